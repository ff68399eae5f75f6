"""A webhook receiver for the tests: a real HTTP server on loopback, and an INDEPENDENT check
of the Standard Webhooks signature (written from the specification, importing nothing of
townhall's signer).

Each path behaves as its name says: `/ok...` answers 204; `/fail<N>...` answers 500 to the
first N attempts of each webhook-id, then 204; `/down...` always 500; `/slow...` waits
SLOW_SECONDS before answering; `/to-metadata` redirects to the metadata service,
`/to-trap` to `/trap` on this server (which must never be called).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SLOW_SECONDS = 3.0


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int

    @property
    def payload(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance: int = 300) -> bool:
    """Standard Webhooks, from the spec: HMAC-SHA256 keyed with the base64-decoded part of
    `whsec_...` over `{id}.{timestamp}.{body}`, base64; any of the space-separated `v1,`
    signatures may match; the timestamp within `tolerance` seconds of now."""
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    content = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest())
    for candidate in headers["webhook-signature"].split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return True
    return False


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self._attempts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, extra = receiver._answer(self.path, headers)
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, headers, body, time.time(), status)
                    )
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _answer(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        if path.startswith("/ok"):
            return 204, {}
        if path.startswith("/fail"):
            allowed = int(path[5])
            with self._lock:
                self._attempts[(path, headers.get("webhook-id", ""))] += 1
                seen = self._attempts[(path, headers.get("webhook-id", ""))]
            return (500 if seen <= allowed else 204), {}
        if path.startswith("/slow"):
            time.sleep(SLOW_SECONDS)
            return 204, {}
        if path == "/to-metadata":
            return 302, {"location": "http://169.254.169.254/latest/meta-data/"}
        if path == "/to-trap":
            return 307, {"location": f"http://127.0.0.1:{self.port}/trap"}
        return 500, {}

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
