"""Media tokens and revocation tokens: their claims, and their verification on a node.

A **media token** lets one participant use one media node for one meeting, briefly. Signaling
issues it (with the private key, in the control plane) after it has placed the meeting; the
participant's SDP reaches the node with it. A **revocation token** is what the control plane
sends a node when a participant is removed or a meeting ends: the node drops their
connections and refuses every media token the revocation covers.

Both are JWTs signed with EdDSA by the key of the other Townhall tokens, each under its own
audience, so no token of one kind stands in for another: a participant's media token cannot
revoke anyone, and a revocation token cannot open a session.

A node verifies them with public keys only (`MediaTokenVerifier`), pinning the algorithm, the
key id, the audience, the expiry, the meeting the request names and the node's own id, so a
token for another node or meeting is useless even if it leaks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contracts.errors import TokenRejected
from contracts.jwks import public_keys_from_jwks
from contracts.tokens import ISSUER, verify_eddsa

MEDIA_AUDIENCE = "townhall:media"
REVOCATION_AUDIENCE = "townhall:media-revocation"

# Long enough for a client to set up ICE and DTLS after signaling answers (a few seconds),
# short enough that a leaked token is worth little. The node checks the token once, when the
# peer connection is set up; a reconnect asks signaling for a fresh one. Also the longest a
# node accepts: revocations are forgotten on the strength of it (see below).
MEDIA_TTL_SECONDS = 120
# A revocation token is sent at once by the control plane that made it.
REVOCATION_TTL_SECONDS = 30
# Tighter than the 30 s of the longer-lived tokens: nodes keep their clocks with NTP (on EC2,
# the Amazon Time Sync Service), and the skew allowance adds straight to the token's life.
CLOCK_SKEW_SECONDS = 10
# A revocation covers the tokens issued at or before it; each of those is refused as expired
# once its issue time plus its lifetime plus the skew has passed, so the revocation can be
# forgotten that long after it was made.
REVOCATION_RETENTION_SECONDS = MEDIA_TTL_SECONDS + CLOCK_SKEW_SECONDS
MAX_VIDEO_SLOTS = 25

RevocationScope = Literal["participant", "meeting"]
REVOCATION_SCOPES: tuple[RevocationScope, ...] = ("participant", "meeting")


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
    # Issue time in milliseconds: a revocation refuses the tokens issued at or before it, and a
    # token minted a moment after it (a new session) must still pass.
    issued_at_ms: int = 0


@dataclass(frozen=True)
class RevocationClaims:
    meeting_id: str
    node_id: str
    scope: RevocationScope
    # The participant whose tokens are refused; None when the whole meeting's are.
    participant_id: str | None
    # The revocation's own issue time: it covers media tokens issued at or before it.
    revoked_at_ms: int
    expires_at: int
    token_id: str

    def covers(self, claims: MediaClaims) -> bool:
        """Whether this revocation refuses the media token with `claims`."""
        if claims.meeting_id != self.meeting_id or claims.issued_at_ms > self.revoked_at_ms:
            return False
        return self.scope == "meeting" or claims.participant_id == self.participant_id


def media_token_claims(
    meeting_id: str,
    participant_id: str,
    node_id: str,
    *,
    may_publish: bool,
    issued_at_ms: int,
    token_id: str,
    ttl_seconds: int = MEDIA_TTL_SECONDS,
    video_slots: int | None = None,
) -> dict[str, Any]:
    """The claims of a media token, ready to sign."""
    _require_text(
        "media token", meeting_id=meeting_id, participant_id=participant_id, node_id=node_id
    )
    if not 0 < ttl_seconds <= MEDIA_TTL_SECONDS:
        raise ValueError(f"a media token lives 1 to {MEDIA_TTL_SECONDS} s")
    issued_at = issued_at_ms // 1000
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": MEDIA_AUDIENCE,
        "sub": participant_id,
        "mid": meeting_id,
        "nid": node_id,
        "pub": bool(may_publish),
        "iat": issued_at,
        "iat_ms": issued_at_ms,
        "exp": issued_at + ttl_seconds,
        "jti": token_id,
    }
    if video_slots is not None:
        claims["vs"] = int(video_slots)
    return claims


def revocation_token_claims(
    meeting_id: str,
    node_id: str,
    *,
    participant_id: str | None,
    issued_at_ms: int,
    token_id: str,
) -> dict[str, Any]:
    """The claims of a revocation token: for `participant_id`, or with None for the whole
    meeting. The scope is spelled out, so a token is never read as the wider one by mistake."""
    _require_text("revocation token", meeting_id=meeting_id, node_id=node_id)
    if participant_id is not None:
        _require_text("revocation token", participant_id=participant_id)
    issued_at = issued_at_ms // 1000
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": REVOCATION_AUDIENCE,
        "mid": meeting_id,
        "nid": node_id,
        "scope": "meeting" if participant_id is None else "participant",
        "iat": issued_at,
        "iat_ms": issued_at_ms,
        "exp": issued_at + REVOCATION_TTL_SECONDS,
        "jti": token_id,
    }
    if participant_id is not None:
        claims["pid"] = participant_id
    return claims


class MediaTokenVerifier:
    """Verifies media and revocation tokens on a node, with public keys only.

    `public_keys` maps key id to key, so a key rotation can publish old and new side by side.
    Every refusal is a TokenRejected that says which check failed.
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
        # mid and nid are checked after the audience: a join token must be reported as the
        # wrong kind of token, not as a broken one.
        claims = verify_eddsa(
            token,
            self._keys,
            audience=MEDIA_AUDIENCE,
            now=self._clock,
            skew_seconds=CLOCK_SKEW_SECONDS,
            kind="media token",
            wrong_audience="token is not a media token",
        )
        mid, nid = self._meeting_and_node(claims, meeting_id, "media token")
        pub = claims.get("pub")
        if not isinstance(pub, bool):
            raise TokenRejected("media token lacks claim 'pub'")
        if int(claims["exp"]) - int(claims["iat"]) > MEDIA_TTL_SECONDS:
            # Revocations are forgotten once the tokens they cover expire: that needs a bound.
            raise TokenRejected(f"media token lives longer than {MEDIA_TTL_SECONDS} s")
        return MediaClaims(
            meeting_id=mid,
            participant_id=_text(claims, "sub", "media token"),
            node_id=nid,
            may_publish=pub,
            expires_at=int(claims["exp"]),
            token_id=str(claims.get("jti") or ""),
            video_slots=_video_slots(claims.get("vs")),
            # Tokens issued before the claim existed carry whole seconds only, which makes a
            # revocation cover them a little longer, never shorter.
            issued_at_ms=_issued_at_ms(claims, "media token", required=False),
        )

    def verify_revocation(self, token: str, meeting_id: str) -> RevocationClaims:
        """The claims of a valid revocation token for `meeting_id` on this node."""
        claims = verify_eddsa(
            token,
            self._keys,
            audience=REVOCATION_AUDIENCE,
            now=self._clock,
            skew_seconds=CLOCK_SKEW_SECONDS,
            kind="revocation token",
            wrong_audience="token is not a revocation token",
            # No subject: the scope and the participant are claims of their own.
            required=(),
        )
        mid, nid = self._meeting_and_node(claims, meeting_id, "revocation token")
        scope = claims.get("scope")
        participant = claims.get("pid")
        if scope == "participant":
            if not isinstance(participant, str) or not participant:
                raise TokenRejected("revocation token lacks claim 'pid'")
        elif scope == "meeting":
            if participant is not None:
                raise TokenRejected("a revocation of a whole meeting names no participant")
        else:
            raise TokenRejected("revocation token claim 'scope' must be participant or meeting")
        return RevocationClaims(
            meeting_id=mid,
            node_id=nid,
            scope=scope,
            participant_id=participant,
            revoked_at_ms=_issued_at_ms(claims, "revocation token", required=True),
            expires_at=int(claims["exp"]),
            token_id=str(claims.get("jti") or ""),
        )

    def _meeting_and_node(
        self, claims: Mapping[str, Any], meeting_id: str, kind: str
    ) -> tuple[str, str]:
        mid = _text(claims, "mid", kind)
        if mid != meeting_id:
            raise TokenRejected(f"{kind} is for another meeting")
        nid = _text(claims, "nid", kind)
        if nid != self._node_id:
            raise TokenRejected(f"{kind} is for another media node")
        return mid, nid


def _video_slots(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_VIDEO_SLOTS:
        raise TokenRejected(f"media token claim 'vs' must be 1 to {MAX_VIDEO_SLOTS}")
    return value


def _issued_at_ms(claims: Mapping[str, Any], kind: str, *, required: bool) -> int:
    issued_at = int(claims["iat"])
    value = claims.get("iat_ms")
    if value is None and not required:
        return issued_at * 1000
    if not isinstance(value, int) or isinstance(value, bool) or value // 1000 != issued_at:
        raise TokenRejected(f"{kind} claim 'iat_ms' does not match 'iat'")
    return value


def _text(claims: Mapping[str, Any], name: str, kind: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise TokenRejected(f"{kind} lacks claim {name!r}")
    return value


def _require_text(kind: str, **values: str) -> None:
    for name, text in values.items():
        if not text:
            raise ValueError(f"a {kind} needs a {name}")
