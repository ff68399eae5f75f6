"""Media tokens: what lets one participant use one media node for one meeting, briefly.

Signaling issues a media token after it has placed the meeting (the participant is already
authenticated by a join token at that point). The client hands it to the node with its SDP
offer. It is a JWT signed with EdDSA by the same key as the other Townhall tokens, under its
own audience (`townhall:media`), so neither a join token nor an access token can stand in for
it, nor it for them.

The node verifies it with the public key only (`MediaTokenVerifier`): it pins the algorithm,
the key id, the audience, the expiry, the meeting the request names and the node's own id, so
a token for another node or meeting is useless even if it leaks.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from townhall.auth.verification import ALGORITHM, ISSUER, verify_eddsa
from townhall.errors import Unauthenticated
from townhall.media.jwks import public_keys_from_jwks

if TYPE_CHECKING:
    from townhall.auth.keys import SigningKey

MEDIA_AUDIENCE = "townhall:media"

# Long enough for a client to set up ICE and DTLS after signaling answers (a few seconds),
# short enough that a leaked token is worth little. The node checks the token once, when the
# peer connection is set up; a reconnect asks signaling for a fresh one.
MEDIA_TTL_SECONDS = 120
# Tighter than the 30 s of the longer-lived tokens: nodes keep their clocks with NTP (on EC2,
# the Amazon Time Sync Service), and the skew allowance adds straight to the token's life.
CLOCK_SKEW_SECONDS = 10


@dataclass(frozen=True)
class MediaClaims:
    meeting_id: str
    participant_id: str
    node_id: str
    may_publish: bool
    expires_at: int
    # Unique per token: lets a node log and, if it wants, refuse a replay.
    token_id: str
    # The meeting's camera slots (its last-N), for the room the node creates; None: the
    # node's default.
    video_slots: int | None = None


class MediaTokenService:
    """Issues media tokens (control plane only: it holds the private key)."""

    def __init__(
        self,
        key: SigningKey,
        clock: Callable[[], float] = time.time,
        ttl_seconds: int = MEDIA_TTL_SECONDS,
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError("a media token needs a positive lifetime")
        self._key = key
        self._clock = clock
        self._ttl = ttl_seconds

    def issue(
        self,
        meeting_id: str,
        participant_id: str,
        node_id: str,
        *,
        may_publish: bool,
        video_slots: int | None = None,
    ) -> tuple[str, int]:
        """The token and its expiry (epoch seconds)."""
        for name, text in (
            ("meeting_id", meeting_id),
            ("participant_id", participant_id),
            ("node_id", node_id),
        ):
            if not text:
                raise ValueError(f"a media token needs a {name}")
        now = int(self._clock())
        exp = now + self._ttl
        claims = {
            "iss": ISSUER,
            "aud": MEDIA_AUDIENCE,
            "sub": participant_id,
            "mid": meeting_id,
            "nid": node_id,
            "pub": bool(may_publish),
            "iat": now,
            "exp": exp,
            "jti": secrets.token_urlsafe(12),
        }
        if video_slots is not None:
            claims["vs"] = int(video_slots)
        token = jwt.encode(
            claims, self._key.private_key, algorithm=ALGORITHM, headers={"kid": self._key.kid}
        )
        return token, exp


class MediaTokenVerifier:
    """Verifies media tokens on a node, with public keys only.

    `public_keys` maps key id to key, so a key rotation can publish old and new side by side.
    """

    def __init__(
        self,
        public_keys: Mapping[str, Ed25519PublicKey],
        node_id: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not public_keys:
            raise ValueError("a verifier needs at least one public key")
        for key in public_keys.values():
            # Refuse a private key outright: the whole point is that a node never holds one.
            if not isinstance(key, Ed25519PublicKey):
                raise TypeError("MediaTokenVerifier takes Ed25519 public keys only")
        if not node_id:
            raise ValueError("a verifier needs the node id it verifies for")
        self._keys = dict(public_keys)
        self._node_id = node_id
        self._clock = clock

    @classmethod
    def from_jwks(
        cls,
        document: Mapping[str, Any],
        node_id: str,
        clock: Callable[[], float] = time.time,
    ) -> MediaTokenVerifier:
        return cls(public_keys_from_jwks(document), node_id, clock)

    def verify(self, token: str, meeting_id: str) -> MediaClaims:
        """The token's claims if it is a valid media token for `meeting_id` on this node."""
        claims = self._decode(token)
        mid = _text(claims, "mid")
        if mid != meeting_id:
            raise Unauthenticated("media token is for another meeting")
        nid = _text(claims, "nid")
        if nid != self._node_id:
            raise Unauthenticated("media token is for another media node")
        pub = claims.get("pub")
        if not isinstance(pub, bool):
            raise Unauthenticated("media token lacks claim 'pub'")
        return MediaClaims(
            meeting_id=mid,
            participant_id=_text(claims, "sub"),
            node_id=nid,
            may_publish=pub,
            expires_at=int(claims["exp"]),
            token_id=str(claims.get("jti") or ""),
            video_slots=_video_slots(claims.get("vs")),
        )

    def _decode(self, token: str) -> dict[str, Any]:
        # mid and nid are checked by verify(), after the audience: a join token must be
        # reported as the wrong kind of token, not as a broken one.
        return verify_eddsa(
            token,
            self._keys,
            audience=MEDIA_AUDIENCE,
            now=self._clock,
            skew_seconds=CLOCK_SKEW_SECONDS,
            kind="media token",
            wrong_audience="token is not a media token",
        )


MAX_VIDEO_SLOTS = 25


def _video_slots(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_VIDEO_SLOTS:
        raise Unauthenticated(f"media token claim 'vs' must be 1 to {MAX_VIDEO_SLOTS}")
    return value


def _text(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise Unauthenticated(f"media token lacks claim {name!r}")
    return value
