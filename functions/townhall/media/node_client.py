"""The control plane's client for a media node's control API (`media_fleet/service`).

Signaling relays each SDP offer and answer between a participant's WebSocket and the node
that hosts their meeting, so browsers only ever speak ICE, DTLS and SRTP to a node, never its
control API. Every call carries a media token the node verifies with public keys alone.

A node's control API is https on its public address, with a self-signed certificate it makes at
every start. There is no CA to ask: the client pins the SHA-256 fingerprint the node published
in its registry item (`MediaNode.control_cert_sha256`), and urllib3 checks it during the TLS
handshake, before any of the request is sent. An https node with no fingerprint is refused.
Plain http is only for nodes on loopback in tests.

The paths, bodies and error codes are the contract in `contracts.node_api`; the node's
answers become the domain's errors here.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from contracts import node_api
from contracts.media_nodes import MediaNode
from contracts.node_api import ErrorCode
from townhall.errors import Conflict, DomainError, Forbidden, Gone, InvalidInput

# aiortc gathers host candidates only (media_fleet/service/ice.py) before it answers: ~0.1 s on
# loopback, well under a second on a busy node. Longer than this, and the page waiting on it
# is better served by its next try (on another node if this one is found dead meanwhile).
TIMEOUT_SECONDS = 4.0
# A node accepts a connection in well under this, busy or not (the kernel accepts it); no
# connection in this time means the instance is gone.
CONNECT_TIMEOUT_SECONDS = 2.0
# A health check answers from the node's front without touching a meeting: a node that takes
# longer is slow or stalled (`townhall.media.access` tells which by its heartbeat).
PROBE_TIMEOUT_SECONDS = 1.0
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

log = logging.getLogger(__name__)

_pool: Any = None
_lock = threading.Lock()


class MediaNodeUnavailable(DomainError):
    code = "media_unavailable"


class MediaNodeUnreachable(MediaNodeUnavailable):
    """No connection to the node's control API: refused (its process is gone: the port is
    closed), reset before any answer, or not accepted in time (the instance is gone). Unlike
    a slow answer, this is evidence the node is lost (`townhall.media.access`)."""


class MediaNodeSilent(MediaNodeUnavailable):
    """Connected, but no answer within `TIMEOUT_SECONDS`: a node that is busy, paused, or
    stalled for good. Not evidence on its own (`townhall.media.access`)."""


def _http() -> Any:
    global _pool
    with _lock:
        if _pool is None:
            import urllib3

            _pool = urllib3.PoolManager(maxsize=16, retries=False)
        return _pool


def call(node: MediaNode, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """POST `body` to the node; the JSON answer, or a DomainError saying what the node said."""
    return call_url(node.control_url, path, body, cert_sha256=node.control_cert_sha256)


def probe(node: MediaNode) -> None:
    """Ask the node's health; returns if it answered 200. Raises MediaNodeUnreachable (no
    connection), MediaNodeSilent (no answer in `PROBE_TIMEOUT_SECONDS`), or
    MediaNodeUnavailable (any other failure)."""
    _request(
        node.control_url,
        "GET",
        node_api.HEALTH_PATH,
        None,
        cert_sha256=node.control_cert_sha256,
        read_timeout=PROBE_TIMEOUT_SECONDS,
    )


def _pool_for(control_url: str, cert_sha256: str | None) -> Any:
    scheme = urlsplit(control_url).scheme
    if scheme == "http":
        return _http().connection_from_url(control_url)
    if scheme != "https":
        raise MediaNodeUnavailable(f"the media node's control URL is not http(s): {control_url}")
    pin = (cert_sha256 or "").replace(":", "").lower()
    if not _SHA256_HEX.fullmatch(pin):
        raise MediaNodeUnavailable(
            "the media node published no SHA-256 certificate fingerprint: refusing to call it"
        )
    # The certificate is self-signed: no chain or hostname to verify, only the pinned
    # fingerprint, which urllib3 checks before sending anything. Pools are keyed by it too.
    return _http().connection_from_url(
        control_url, pool_kwargs={"cert_reqs": "CERT_NONE", "assert_fingerprint": pin}
    )


def call_url(
    control_url: str, path: str, body: Mapping[str, Any], *, cert_sha256: str | None
) -> dict[str, Any]:
    """`call` with the node's URL and certificate fingerprint given apart."""
    return _request(
        control_url, "POST", path, body, cert_sha256=cert_sha256, read_timeout=TIMEOUT_SECONDS
    )


def _request(
    control_url: str,
    method: str,
    path: str,
    body: Mapping[str, Any] | None,
    *,
    cert_sha256: str | None,
    read_timeout: float,
) -> dict[str, Any]:
    import urllib3

    pool = _pool_for(control_url, cert_sha256)
    base = urlsplit(control_url).path.rstrip("/")

    def send() -> Any:
        return pool.request(
            method,
            base + path,
            body=None if body is None else json.dumps(body).encode(),
            headers={"content-type": "application/json"},
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=read_timeout),
            retries=False,
        )

    try:
        try:
            response = send()
        except urllib3.exceptions.ProtocolError:
            # A kept-alive connection that broke (the node restarted, or died): once more on
            # a new one, which tells a lost node (refused) from a blip. A repeat reaches the
            # node as a renegotiation at worst.
            response = send()
    except urllib3.exceptions.SSLError as exc:
        # The detail (the node's address) goes to the log, not to the participant.
        log.warning("media node %s%s: TLS refused: %s", control_url, path, exc)
        raise MediaNodeUnavailable(
            "the media node's TLS certificate is not the one it registered"
        ) from exc
    except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError) as exc:
        log.warning("media node %s%s unreachable: %s", control_url, path, exc)
        raise MediaNodeUnreachable("the media node cannot be reached; try again") from exc
    except urllib3.exceptions.ReadTimeoutError as exc:
        log.warning("media node %s%s did not answer in time", control_url, path)
        raise MediaNodeSilent("the media node did not answer; try again") from exc
    except urllib3.exceptions.HTTPError as exc:
        log.warning("media node %s%s did not answer: %s", control_url, path, exc)
        raise MediaNodeUnavailable("the media node did not answer; try again") from exc
    try:
        answer = json.loads(response.data or b"{}")
    except json.JSONDecodeError:
        answer = {}
    if response.status == 200:
        return answer if isinstance(answer, dict) else {}
    error = answer.get("error") if isinstance(answer, dict) else None
    error = error if isinstance(error, dict) else {}
    message = str(error.get("message") or f"HTTP {response.status}")
    if response.status == 400 or response.status == 413:
        raise InvalidInput(f"the media node refused the request: {message}")
    if response.status == 403:
        raise Forbidden(message)
    if response.status == 409:
        raise Conflict(message)
    if response.status == 503 and error.get("code") != ErrorCode.OVERLOADED:
        raise Gone(f"the media node is draining: {message}")
    raise MediaNodeUnavailable(f"the media node failed: {message}")
