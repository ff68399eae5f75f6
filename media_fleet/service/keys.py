"""Media- and revocation-token checks on the node, with the control plane's public keys only.

The keys come as a JWKS document, from a file or from the control plane's
`/api/.well-known/jwks.json`. They are loaded once at start, and again when a token names a key
id we do not hold (a key rotation), at most once per `refresh_interval`: a stream of tokens
with made-up key ids must not turn into a stream of fetches.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jwt

from contracts.errors import TokenRejected
from contracts.jwks import public_keys_from_jwks
from contracts.media_tokens import MediaClaims, MediaTokenVerifier, RevocationClaims
from media_fleet.service.routing import unverified_meeting_id

log = logging.getLogger(__name__)

JWKS_FETCH_TIMEOUT_SECONDS = 5.0
# A JWKS is a few hundred bytes; anything much larger is not one.
JWKS_MAX_BYTES = 64 * 1024
REFRESH_INTERVAL_SECONDS = 30.0
# Pauses between the tries of one JWKS fetch (then one last try).
JWKS_FETCH_PAUSES_SECONDS = (0.5, 1.0, 2.0)

JwksLoader = Callable[[], Mapping[str, Any]]


def jwks_loader(location: str, timeout: float = JWKS_FETCH_TIMEOUT_SECONDS) -> JwksLoader:
    """A blocking loader for a JWKS at a URL (http or https) or in a file."""
    if location.startswith(("http://", "https://")):

        def fetch_once() -> Mapping[str, Any]:
            request = urllib.request.Request(location, headers={"Accept": "application/json"})
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return _parse(response.read(JWKS_MAX_BYTES + 1), location)

        def fetch() -> Mapping[str, Any]:
            # A node often starts while the control plane is cold or busy (a scale-out under
            # load): a few tries, bounded, before the worker gives up starting.
            for pause in JWKS_FETCH_PAUSES_SECONDS:
                try:
                    return fetch_once()
                except (OSError, ValueError) as exc:
                    log.warning(
                        "JWKS at %s not fetched (%s); again in %.1f s", location, exc, pause
                    )
                    time.sleep(pause)
            return fetch_once()

        return fetch

    path = Path(location)

    def read() -> Mapping[str, Any]:
        return _parse(path.read_bytes(), location)

    return read


def _parse(data: bytes, location: str) -> Mapping[str, Any]:
    if len(data) > JWKS_MAX_BYTES:
        raise ValueError(f"JWKS at {location} is larger than {JWKS_MAX_BYTES} bytes")
    document = json.loads(data)
    if not isinstance(document, dict):
        raise ValueError(f"JWKS at {location} is not a JSON object")
    return document


class TokenGate:
    """Verifies a request's media token for this node; the meeting comes from the token."""

    def __init__(
        self,
        load: JwksLoader,
        node_id: str,
        *,
        refresh_interval: float = REFRESH_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._node_id = node_id
        self._refresh_interval = refresh_interval
        self._clock = clock
        self._monotonic = monotonic
        # Raises on a missing or broken JWKS: a node that cannot verify must not start.
        self._kids, self._verifier = self._build(load())
        # The load at start does not count: a key rotated just before we started must still
        # be fetched on the first token that names it.
        self._last_refresh: float | None = None
        self._refreshing = asyncio.Lock()

    @property
    def node_id(self) -> str:
        return self._node_id

    def _build(self, document: Mapping[str, Any]) -> tuple[frozenset[str], MediaTokenVerifier]:
        keys = public_keys_from_jwks(document)
        return frozenset(keys), MediaTokenVerifier(keys, self._node_id, self._clock)

    async def verify(self, token: Any) -> MediaClaims:
        """A participant's media token for this node. Raises TokenRejected."""
        meeting_id = await self._meeting_of(token, "media token")
        return self._verifier.verify(token, meeting_id)

    async def verify_revocation(self, token: Any) -> RevocationClaims:
        """The control plane's revocation token for this node. Raises TokenRejected."""
        meeting_id = await self._meeting_of(token, "revocation token")
        return self._verifier.verify_revocation(token, meeting_id)

    async def _meeting_of(self, token: Any, kind: str) -> str:
        """The meeting a token names, read unverified (the verifier then checks the signature
        over it), after fetching the keys again if the token names a key id we do not hold."""
        if not isinstance(token, str) or not token:
            raise TokenRejected(f"a {kind} is required")
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as exc:
            raise TokenRejected(f"malformed {kind}") from exc
        if kid not in self._kids:
            await self._refresh()
        meeting_id = unverified_meeting_id(token)
        if meeting_id is None:
            raise TokenRejected(f"{kind} lacks claim 'mid'")
        return meeting_id

    async def _refresh(self) -> None:
        async with self._refreshing:
            last = self._last_refresh
            if last is not None and self._monotonic() - last < self._refresh_interval:
                return
            self._last_refresh = self._monotonic()
            try:
                document = await asyncio.to_thread(self._load)
                self._kids, self._verifier = self._build(document)
            except Exception:
                # Keep the keys we have: a control plane that is briefly unreachable must not
                # stop the node from verifying tokens signed with the current key.
                log.exception("JWKS refresh failed; keeping the current keys")
