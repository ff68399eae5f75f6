"""Our SFU node as a benchmark target: ``python -m media_fleet --workers 1`` on 127.0.0.1.

The node gets a temporary JWKS and a fresh Ed25519 key that mints its media tokens. Its front
speaks TLS with a certificate it makes at start; the bench trusts the certificate it sees at
the first probe (loopback, a process it just started) and only that one afterwards, as the
project's process tests do. ``cert_file`` lets client processes trust it the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import ssl
import sys
import time
from pathlib import Path
from typing import Any

from bench.load.measure import children_of, free_port, tail

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


class OurNode:
    """One node process (supervisor + one worker); the worker is the process to meter."""

    def __init__(
        self,
        *,
        workdir: Path,
        video_slots: int = 9,
        audio_slots: int = 3,
        extra_pythonpath: list[Path] | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from townhall.auth.keys import SigningKey
        from townhall.media.tokens import MediaTokenService

        self.workdir = workdir
        self.video_slots = video_slots
        self.audio_slots = audio_slots
        self.extra_pythonpath = extra_pythonpath or []
        self.extra_env = extra_env or {}
        self.key = SigningKey.from_private_key(Ed25519PrivateKey.generate())
        self.tokens = MediaTokenService(self.key)
        self.node_id = f"bench-{secrets.token_hex(4)}"
        self.url = ""
        self.cert_file = workdir / "node-cert.pem"
        self.process: asyncio.subprocess.Process | None = None
        self.worker_pid = 0
        self.err = workdir / "node.err"

    @property
    def pid(self) -> int:
        """The process whose CPU counts: the worker (it holds every room)."""
        return self.worker_pid

    def token(self, meeting: str, participant: str, *, may_publish: bool) -> str:
        return self.tokens.issue(meeting, participant, self.node_id, may_publish=may_publish)[0]

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert_file))

    def http(self, timeout: float = 5.0) -> Any:
        import httpx

        return httpx.AsyncClient(timeout=timeout, trust_env=False, verify=self.ssl_context())

    async def start(self) -> None:
        import httpx

        from townhall.media.jwks import jwks

        jwks_file = self.workdir / "jwks.json"
        jwks_file.write_text(json.dumps(jwks(self.key)))
        port = free_port()
        self.url = f"https://127.0.0.1:{port}"
        pythonpath = [*map(str, self.extra_pythonpath), str(ROOT / "functions"), str(ROOT)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath), **self.extra_env}
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "media_fleet",
            "--node-id", self.node_id,
            "--control-host", "127.0.0.1",
            "--control-port", str(port),
            "--jwks", str(jwks_file),
            "--workers", "1",
            "--ice-host", "127.0.0.1",
            "--video-slots", str(self.video_slots),
            "--audio-slots", str(self.audio_slots),
            "--drain-deadline", "3",
            cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=self.err.open("wb"),
        )  # fmt: skip
        started = time.monotonic()
        while time.monotonic() - started < START_TIMEOUT:
            if self.process.returncode is not None:
                raise RuntimeError("the node exited at start: " + tail(self.err))
            if not self.cert_file.exists():
                with contextlib.suppress(OSError):
                    pem = await asyncio.to_thread(
                        ssl.get_server_certificate, ("127.0.0.1", port), timeout=2.0
                    )
                    self.cert_file.write_text(pem)
            if self.cert_file.exists():
                with contextlib.suppress(httpx.HTTPError):
                    async with self.http() as http:
                        health = await self.health(http)
                    if health["workers"] and "pid" in health["workers"][0]:
                        self.worker_pid = int(health["workers"][0]["pid"])
                        return
            await asyncio.sleep(0.2)
        raise RuntimeError("the node did not answer /v1/health in time: " + tail(self.err))

    async def health(self, http: Any) -> dict[str, Any]:
        answer = await http.get(f"{self.url}/v1/health")
        answer.raise_for_status()
        return dict(answer.json())

    async def stop(self) -> None:
        """SIGTERM (the node drains, bounded by --drain-deadline), then kill."""
        node = self.process
        if node is not None and node.returncode is None:
            node.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(node.wait(), STOP_TIMEOUT)
            except TimeoutError:
                self.kill()
                await node.wait()

    def kill(self) -> None:
        """Last resort, by pid: the node's workers (its children), then the node."""
        node = self.process
        if node is None or node.returncode is not None:
            return
        for pid in [*children_of(node.pid), node.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
