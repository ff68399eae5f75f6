"""The Auto Scaling termination hook, end to end on one machine: a node process sees
`Terminated` in (a local stand-in for) IMDSv2, drains, completes the lifecycle action once
(against a local stand-in for the Auto Scaling API, the AWS boundary), and exits 0."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.media.test_imds import FakeImds
from townhall.auth.keys import SigningKey
from townhall.media.jwks import jwks

REPO = Path(__file__).resolve().parents[2]
INSTANCE = "i-0123456789abcdef0"


class AutoScalingApi(BaseHTTPRequestHandler):
    calls: ClassVar[list[dict[str, str]]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        AutoScalingApi.calls.append(dict(urllib.parse.parse_qsl(body)))
        data = (
            b'<CompleteLifecycleActionResponse xmlns="http://autoscaling.amazonaws.com/doc/'
            b'2011-01-01/"><CompleteLifecycleActionResult/><ResponseMetadata><RequestId>r'
            b"</RequestId></ResponseMetadata></CompleteLifecycleActionResponse>"
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_termination_in_imds_drains_completes_the_hook_and_exits(tmp_path: Path) -> None:
    AutoScalingApi.calls = []
    asg = ThreadingHTTPServer(("127.0.0.1", 0), AutoScalingApi)
    threading.Thread(target=asg.serve_forever, daemon=True).start()
    (tmp_path / "jwks.json").write_text(
        json.dumps(jwks(SigningKey.from_private_key(Ed25519PrivateKey.generate())))
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process: subprocess.Popen[bytes] | None = None
    try:
        with FakeImds() as imds:
            env = {
                **os.environ,
                # As on EC2: the node runs without functions/ on its path.
                "PYTHONPATH": str(REPO),
                "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url,
                "AWS_ENDPOINT_URL_AUTO_SCALING": f"http://127.0.0.1:{asg.server_address[1]}",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
            }
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "media_fleet",
                    "--node-id",
                    INSTANCE,
                    "--instance-id",
                    INSTANCE,
                    "--asg-name",
                    "Townhall-Media-Nodes",
                    "--control-host",
                    "127.0.0.1",
                    "--control-port",
                    str(port),
                    "--jwks",
                    str(tmp_path / "jwks.json"),
                    "--workers",
                    "1",
                    "--ice-host",
                    "127.0.0.1",
                    "--drain-deadline",
                    "5",
                ],
                cwd=REPO,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=(tmp_path / "node.log").open("wb"),
            )
            # Serving: its control API (TLS, so plain HTTP would never answer) accepts.
            for _ in range(300):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    time.sleep(0.1)
            else:
                raise AssertionError("the node never served its control API")
            for _ in range(200):  # the watcher is polling the lifecycle state
                if imds.state_reads() > 0:
                    break
                time.sleep(0.05)
            assert process.poll() is None and imds.state_reads() > 0
            imds.set_state("Terminated")
            assert process.wait(timeout=30) == 0, (tmp_path / "node.log").read_text()[-2000:]
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        asg.shutdown()
        asg.server_close()
    assert [
        (c["Action"], c["AutoScalingGroupName"], c["InstanceId"], c["LifecycleActionResult"])
        for c in AutoScalingApi.calls
    ] == [("CompleteLifecycleAction", "Townhall-Media-Nodes", INSTANCE, "CONTINUE")]
