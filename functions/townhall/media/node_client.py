"""The control plane's client for a media node's control API (`media_fleet/service`).

Signaling relays each SDP offer and answer between a participant's WebSocket and the node
that hosts their meeting, so browsers only ever speak ICE, DTLS and SRTP to a node, never its
control API. Every call carries a media token the node verifies with public keys alone.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from townhall.errors import Conflict, DomainError, Forbidden, Gone, InvalidInput

TIMEOUT_SECONDS = 10.0  # aiortc gathers candidates before it answers; loopback takes ~0.1 s

_pool: Any = None
_lock = threading.Lock()


class MediaNodeUnavailable(DomainError):
    code = "media_unavailable"


def _http() -> Any:
    global _pool
    with _lock:
        if _pool is None:
            import urllib3

            _pool = urllib3.PoolManager(maxsize=16, retries=False)
        return _pool


def call(control_url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST `body` to the node; the JSON answer, or a DomainError saying what the node said."""
    import urllib3

    try:
        response = _http().request(
            "POST",
            control_url.rstrip("/") + path,
            body=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
            timeout=urllib3.Timeout(connect=2.0, read=TIMEOUT_SECONDS),
        )
    except urllib3.exceptions.HTTPError as exc:
        raise MediaNodeUnavailable(f"the media node did not answer: {exc}") from exc
    try:
        answer = json.loads(response.data or b"{}")
    except json.JSONDecodeError:
        answer = {}
    if response.status == 200:
        return answer if isinstance(answer, dict) else {}
    message = str((answer.get("error") or {}).get("message") or f"HTTP {response.status}")
    if response.status == 400 or response.status == 413:
        raise InvalidInput(f"the media node refused the request: {message}")
    if response.status == 403:
        raise Forbidden(message)
    if response.status == 409:
        raise Conflict(message)
    if response.status == 503:
        raise Gone(f"the media node is draining: {message}")
    raise MediaNodeUnavailable(f"the media node failed: {message}")
