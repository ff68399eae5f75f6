"""Signed tokens: short-lived access tokens for host accounts, and join tokens scoped to one
meeting and one role. Both are JWTs signed with EdDSA (Ed25519).

The two kinds carry different audiences, so one can never stand in for the other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from townhall import clock
from townhall.auth.claims import ROLES, AccessClaims, JoinClaims, Role
from townhall.auth.keys import SigningKey
from townhall.auth.verification import ALGORITHM, ISSUER, verify_eddsa
from townhall.errors import Unauthenticated

__all__ = ["ROLES", "AccessClaims", "JoinClaims", "Role", "TokenService", "new_opaque_secret"]

ACCESS_AUDIENCE = "townhall:api"
JOIN_AUDIENCE = "townhall:meeting"
# A join link for a named participant (the partner API): it lets its bearer join one meeting
# under that name, without the passcode, until it expires. Not a join token: it starts nothing
# and reaches no socket; POST /join exchanges it for one.
INVITE_AUDIENCE = "townhall:invite"

ACCESS_TTL_SECONDS = 15 * 60
JOIN_TTL_SECONDS = 15 * 60
CLOCK_SKEW_SECONDS = 30


class TokenService:
    def __init__(self, key: SigningKey, clock: Callable[[], float] = clock.now) -> None:
        self._key = key
        self._clock = clock
        # Resume tokens chain by HMAC under a key derived from the signing key: only the
        # control plane can compute the next token from one it handed out.
        raw = key.private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        self._resume_key = hashlib.sha256(b"townhall-resume-chain:" + raw).digest()

    # -- issuing -----------------------------------------------------------------------

    def issue_access(self, user_id: str, email: str, name: str) -> tuple[str, int]:
        now = int(self._clock())
        exp = now + ACCESS_TTL_SECONDS
        claims = {
            "iss": ISSUER,
            "aud": ACCESS_AUDIENCE,
            "sub": user_id,
            "email": email,
            "name": name,
            "iat": now,
            "exp": exp,
            "jti": secrets.token_urlsafe(12),
        }
        return self._sign(claims), exp

    def issue_join(
        self,
        meeting_id: str,
        participant_id: str,
        role: Role,
        name: str,
        user_id: str | None,
        *,
        session_id: str,
        ttl_seconds: int = JOIN_TTL_SECONDS,
    ) -> tuple[str, int]:
        now = int(self._clock())
        exp = now + ttl_seconds
        claims = {
            "iss": ISSUER,
            "aud": JOIN_AUDIENCE,
            "sub": participant_id,
            "mid": meeting_id,
            "sid": session_id,
            "role": role,
            "name": name,
            "uid": user_id or "",
            "iat": now,
            "exp": exp,
        }
        return self._sign(claims), exp

    def issue_invite(self, meeting_id: str, name: str, ttl_seconds: int) -> InviteClaims:
        """A signed invite for `name` to the meeting; its `token` is the link's secret."""
        now = int(self._clock())
        invite_id = secrets.token_urlsafe(12)
        claims = {
            "iss": ISSUER,
            "aud": INVITE_AUDIENCE,
            "sub": invite_id,
            "mid": meeting_id,
            "name": name,
            "iat": now,
            "exp": now + ttl_seconds,
        }
        return InviteClaims(meeting_id, name, invite_id, now + ttl_seconds, self._sign(claims))

    def verify_invite(self, token: str) -> InviteClaims:
        claims = self._verify(token, INVITE_AUDIENCE)
        return InviteClaims(
            meeting_id=_text(claims, "mid"),
            name=_text(claims, "name"),
            invite_id=_text(claims, "sub"),
            expires_at=int(claims["exp"]),
            token=token,
        )

    def new_resume_token(self) -> str:
        return new_opaque_secret()

    def next_resume_token(self, previous: str) -> str:
        """The token that replaces `previous` on a rejoin: the same every time it is asked
        for, so a rejoin whose answer was lost gets the same answer again."""
        digest = hmac.new(self._resume_key, previous.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    # -- verifying ---------------------------------------------------------------------

    def verify_access(self, token: str) -> AccessClaims:
        claims = self._verify(token, ACCESS_AUDIENCE)
        return AccessClaims(
            user_id=_text(claims, "sub"),
            email=_text(claims, "email"),
            name=_text(claims, "name"),
            expires_at=int(claims["exp"]),
        )

    def verify_join(self, token: str, meeting_id: str | None = None) -> JoinClaims:
        claims = self._verify(token, JOIN_AUDIENCE)
        role = _text(claims, "role")
        if role not in ROLES:
            raise Unauthenticated("token carries an unknown role")
        mid = _text(claims, "mid")
        if meeting_id is not None and mid != meeting_id:
            raise Unauthenticated("token is for another meeting")
        return JoinClaims(
            meeting_id=mid,
            session_id=_text(claims, "sid"),
            participant_id=_text(claims, "sub"),
            role=role,
            name=_text(claims, "name"),
            user_id=str(claims.get("uid") or "") or None,
            expires_at=int(claims["exp"]),
        )

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self._key.private_key, algorithm=ALGORITHM, headers={"kid": self._key.kid}
        )

    def _verify(self, token: str, audience: str) -> dict[str, Any]:
        return verify_eddsa(
            token,
            {self._key.kid: self._key.public_key},
            audience=audience,
            now=self._clock,
            skew_seconds=CLOCK_SKEW_SECONDS,
        )


@dataclass(frozen=True)
class InviteClaims:
    meeting_id: str
    name: str
    invite_id: str
    expires_at: int
    token: str


def _text(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise Unauthenticated(f"token lacks claim {name!r}")
    return value


def new_opaque_secret() -> str:
    """A random secret for refresh and resume tokens (stored only as a hash)."""
    return secrets.token_urlsafe(32)
