"""The twin's media fleet: `--nodes N` SFU node processes on loopback, each registered in the
twin's MediaNodes table like an EC2 node, each verifying media tokens with the twin's JWKS.

They run the same program as the fleet (`python -m media_fleet`), one worker each (the twin
shares two cores with everything else). Stopping sends SIGTERM, which makes a node drain and
deregister as it would on scale-in.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from infra.twin import ports

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0


class LocalMediaNode:
    def __init__(
        self,
        index: int,
        host: str,
        jwks_url: str,
        registry_table: str,
        environment: Mapping[str, str],
        log_dir: Path,
    ) -> None:
        self.node_id = f"local-node-{index}"
        self.port = ports.reserve(f"media-{index}", host)
        self.control_url = f"http://{host}:{self.port}"
        log_dir.mkdir(parents=True, exist_ok=True)
        self._log = (log_dir / f"{self.node_id}.log").open("ab")
        env = {
            **os.environ,
            **environment,
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "functions"), str(REPO_ROOT)]),
        }
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "media_fleet",
                "--node-id",
                self.node_id,
                "--control-host",
                host,
                "--control-port",
                str(self.port),
                "--announced-host",
                host,
                "--jwks",
                jwks_url,
                "--workers",
                "1",
                "--registry-table",
                registry_table,
                # aioice gathers only non-loopback interfaces unless told otherwise; the twin
                # keeps all media on loopback.
                "--ice-host",
                host,
                # Under the stop timeout below, so a node always drains out by itself.
                "--drain-deadline",
                "5",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"media node {self.node_id} exited with {self._process.returncode}; "
                    f"see its log in the twin's data folder"
                )
            try:
                with urllib.request.urlopen(f"{self.control_url}/v1/health", timeout=1) as r:
                    r.read()
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"media node {self.node_id} did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)  # drain, deregister, exit
            try:
                self._process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                log.warning("media node %s did not drain in time; killing it", self.node_id)
                self._process.kill()
                self._process.wait(timeout=5)
        self._log.close()


def start_media_nodes(
    count: int,
    host: str,
    jwks_url: str,
    registry_table: str,
    environment: Mapping[str, str],
    log_dir: Path,
) -> list[LocalMediaNode]:
    nodes = [
        LocalMediaNode(i, host, jwks_url, registry_table, environment, log_dir)
        for i in range(count)
    ]
    try:
        for node in nodes:
            node.wait_ready()
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    for node in nodes:
        log.info("media node %s serving %s", node.node_id, node.control_url)
    return nodes
