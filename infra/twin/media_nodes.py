"""The twin's media fleet: `--nodes N` SFU node processes on loopback, each registered in the
twin's MediaNodes table like an EC2 node, each verifying media tokens with the twin's JWKS.

They run the same program as the fleet (`python -m media_fleet`), one worker each (the twin
shares two cores with everything else). Stopping sends SIGTERM, which makes a node drain and
deregister as it would on scale-in.

Each node serves its control API over https with a self-signed certificate it makes at start,
and publishes the certificate's SHA-256 in its registry item, as on EC2. `wait_ready` reads that
fingerprint from the twin's MediaNodes table and checks the node answers `/v1/health` with that
certificate. Tests talk to a node through `node.health()`, `node.post(...)` or
`node.http_client()`, which trust exactly that certificate (never `verify=False`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
import httpx

from infra.twin import ports
from townhall.store.media_nodes import MediaNodeTable

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
PROBE_TIMEOUT_SECONDS = 2.0


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
        self.host = host
        self.port = ports.reserve(f"media-{index}", host)
        self.control_url = f"https://{host}:{self.port}"
        self._registry_table = registry_table
        self._aws = {k: v for k, v in environment.items() if k.startswith("AWS_")}
        # Known once the node has registered (wait_ready): its certificate's SHA-256 and PEM.
        self.cert_sha256: str | None = None
        self._cert_pem: str | None = None
        log_dir.mkdir(parents=True, exist_ok=True)
        self._log = (log_dir / f"{self.node_id}.log").open("ab")
        env = {
            **os.environ,
            **environment,
            # As on EC2: the node runs on contracts/ and media_fleet/ alone, never functions/.
            "PYTHONPATH": str(REPO_ROOT),
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
            # A group of its own (the supervisor and its workers), so that a crash or a stall
            # takes the whole node, as a lost instance would; the twin stops it itself.
            start_new_session=True,
        )

    def _registered_fingerprint(self, registry: MediaNodeTable) -> str | None:
        node = registry.get(self.node_id, time.time())
        if node is None or node.control_url != self.control_url:
            return None
        return node.control_cert_sha256

    def _pin(self, fingerprint: str) -> bool:
        """Fetch the certificate the node serves; keep it if it is the registered one."""
        try:
            pem = ssl.get_server_certificate((self.host, self.port), timeout=PROBE_TIMEOUT_SECONDS)
        except (OSError, ssl.SSLError):
            return False
        if hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest() != fingerprint.lower():
            raise RuntimeError(
                f"media node {self.node_id} serves a certificate that is not the registered one"
            )
        self.cert_sha256, self._cert_pem = fingerprint.lower(), pem
        return True

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        session = boto3.session.Session(
            aws_access_key_id=self._aws.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=self._aws.get("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=self._aws.get("AWS_SESSION_TOKEN"),
            region_name=self._aws.get("AWS_REGION") or self._aws.get("AWS_DEFAULT_REGION"),
        )
        client = session.client("dynamodb", endpoint_url=self._aws.get("AWS_ENDPOINT_URL_DYNAMODB"))
        registry = MediaNodeTable(self._registry_table, client)
        try:
            while True:
                if self._process.poll() is not None:
                    raise RuntimeError(
                        f"media node {self.node_id} exited with {self._process.returncode}; "
                        f"see its log in the twin's data folder"
                    )
                # The node registers once its front serves: then the fingerprint is known.
                fingerprint = self._registered_fingerprint(registry)
                if fingerprint and self._pin(fingerprint):
                    try:
                        self.health()
                        return
                    except httpx.HTTPError:
                        pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"media node {self.node_id} did not start")
                time.sleep(0.1)
        finally:
            client.close()

    def ssl_context(self) -> ssl.SSLContext:
        """Trusts this node's certificate only (the one whose SHA-256 it registered)."""
        if self._cert_pem is None:
            raise RuntimeError(f"media node {self.node_id} is not ready")
        return ssl.create_default_context(cadata=self._cert_pem)

    def http_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An async client for this node's control API (close it, or use `async with`)."""
        return httpx.AsyncClient(
            base_url=self.control_url, verify=self.ssl_context(), trust_env=False, **kwargs
        )

    def health(self) -> dict[str, Any]:
        """GET /v1/health over the pinned TLS."""
        with httpx.Client(
            verify=self.ssl_context(), trust_env=False, timeout=PROBE_TIMEOUT_SECONDS
        ) as http:
            response = http.get(f"{self.control_url}/v1/health")
            response.raise_for_status()
            answer: dict[str, Any] = response.json()
            return answer

    def post(self, path: str, body: Mapping[str, Any], timeout: float = 10.0) -> httpx.Response:
        """POST a JSON body to the control API over the pinned TLS; the response as it came."""
        with httpx.Client(verify=self.ssl_context(), trust_env=False, timeout=timeout) as http:
            return http.post(f"{self.control_url}{path}", json=dict(body))

    def kill(self) -> None:
        """SIGKILL to every process of the node, as a crashed instance: no drain, no `move`
        message, no deregistration. Its registry item stays until its `ttl` passes, as on EC2."""
        if self._process.poll() is None:
            self._signal_node(signal.SIGKILL)
            self._process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def running(self) -> bool:
        return self._process.poll() is None

    def pause(self) -> None:
        """SIGSTOP to every process of the node, as a stalled instance: its sockets stay open
        (the kernel still accepts connections) but nothing answers or forwards."""
        self._signal_node(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_node(signal.SIGCONT)

    def halt(self) -> None:
        """Stop at once (SIGKILL), for the twin's own shutdown: a drain would move the
        participants to another node of this twin, which is stopping too. The twin deletes
        the registry item."""
        if self._process.poll() is None:
            self._signal_node(signal.SIGCONT)
            self._signal_node(signal.SIGKILL)
            self._process.wait(timeout=STOP_TIMEOUT_SECONDS)
        self._log.close()

    def _signal_node(self, sig: signal.Signals) -> None:
        """`sig` to the node's process group (its supervisor and workers)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, sig)

    def stop(self) -> None:
        if self._process.poll() is None:
            self._signal_node(signal.SIGCONT)  # a paused node could not drain
            self._process.send_signal(signal.SIGTERM)  # drain, deregister, exit
            try:
                self._process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                log.warning("media node %s did not drain in time; killing it", self.node_id)
                self._signal_node(signal.SIGKILL)
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
        log.info(
            "media node %s serving %s (certificate sha256 %s)",
            node.node_id,
            node.control_url,
            node.cert_sha256,
        )
    return nodes
