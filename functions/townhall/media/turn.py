"""TURN credentials: what lets a client behind a firewall that drops UDP reach a media node.

The control plane and the TURN servers (coturn) share one secret; a credential is minted for
one participant with no call to the TURN server (the "TURN REST API" scheme coturn implements
as `use-auth-secret`): the username is `{expiry}:{participant_id}` and the password the
Base64 HMAC-SHA1 of the username under the secret. coturn recomputes it, and refuses it after
the expiry or under any other secret.

A credential must outlive the relay it opens: coturn checks it again on every refresh of an
allocation (every few minutes), so one that expired mid-meeting would cut the relay. It lives
`TTL_SECONDS` (longer than a meeting usually runs; a page that negotiates again is given a new
one), far less than the secret it is derived from, which never leaves the servers and the
signaling function.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from contracts import node_api
from townhall.auth.turn_secret import load_turn_secret
from townhall.config import Settings

TTL_SECONDS = 6 * 3600


@dataclass(frozen=True)
class TurnServers:
    """The TURN URLs clients use (`turn:host:3478?transport=udp`, `turns:host:443?...`) and the
    shared secret that credentials for them are derived from."""

    urls: tuple[str, ...]
    secret: bytes
    # `turn:` URLs for the media nodes' side of each connection (empty: nodes relay nothing).
    node_urls: tuple[str, ...] = ()
    ttl_seconds: int = TTL_SECONDS
    clock: Callable[[], float] = time.time

    def credentials(self, participant_id: str) -> tuple[str, str, int]:
        """(username, password, expiry in epoch seconds) for one participant."""
        expires_at = int(self.clock()) + self.ttl_seconds
        username = f"{expires_at}:{participant_id}"
        return username, password_for(self.secret, username), expires_at

    def ice_servers(self, participant_id: str) -> list[dict[str, Any]]:
        """The `iceServers` entry of an RTCPeerConnection's configuration, with its expiry."""
        username, password, expires_at = self.credentials(participant_id)
        return [
            {
                "urls": list(self.urls),
                "username": username,
                "credential": password,
                "expires_at": expires_at,
            }
        ]

    def for_media_node(self, participant_id: str) -> list[node_api.IceServer]:
        """The TURN servers the node's side of this participant's connection gathers a relay
        candidate on, with a credential of its own (so coturn's per-user quota counts the
        node's allocations apart from the participant's); [] when nodes relay nothing."""
        if not self.node_urls:
            return []
        username, password, _ = self.credentials(f"{participant_id}.node")
        return [{"urls": list(self.node_urls), "username": username, "credential": password}]


def password_for(secret: bytes, username: str) -> str:
    digest = hmac.new(secret, username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def turn_servers(settings: Settings) -> TurnServers | None:
    """The configured TURN servers, or None when the deployment has none (clients then get no
    relay; direct UDP is all they have)."""
    if not settings.turn_urls:
        return None
    return TurnServers(
        urls=settings.turn_urls,
        secret=load_turn_secret(settings),
        node_urls=settings.turn_media_node_urls,
    )
