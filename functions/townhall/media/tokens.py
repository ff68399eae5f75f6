"""Issuing media tokens and revocation tokens (control plane only: it holds the private key).

Signaling issues a media token after it has placed the meeting (the participant is already
authenticated by a join token at that point). The client's SDP reaches the node with it. When a
participant is removed or a meeting ends, signaling sends the node a revocation token, which
makes the node drop their connections and refuse the media tokens issued until then.

The claims of both, and their verification on a node with the public key alone, are the
contract in `contracts.media_tokens`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import jwt

from contracts.media_tokens import (
    MEDIA_TTL_SECONDS,
    media_token_claims,
    revocation_token_claims,
)
from contracts.tokens import ALGORITHM

if TYPE_CHECKING:
    from townhall.auth.keys import SigningKey


class MediaTokenService:
    def __init__(
        self,
        key: SigningKey,
        clock: Callable[[], float] = time.time,
        ttl_seconds: int = MEDIA_TTL_SECONDS,
    ) -> None:
        if not 0 < ttl_seconds <= MEDIA_TTL_SECONDS:
            # A node refuses longer-lived tokens: its revocations last only that long.
            raise ValueError(f"a media token lives 1 to {MEDIA_TTL_SECONDS} s")
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
        claims = media_token_claims(
            meeting_id,
            participant_id,
            node_id,
            may_publish=may_publish,
            issued_at_ms=self._now_ms(),
            token_id=secrets.token_urlsafe(12),
            ttl_seconds=self._ttl,
            video_slots=video_slots,
        )
        return self._sign(claims), int(claims["exp"])

    def issue_revocation(
        self, meeting_id: str, node_id: str, *, participant_id: str | None = None
    ) -> str:
        """A token that makes `node_id` drop and refuse `participant_id` (or, with None, the
        whole meeting): every media token of theirs issued until now."""
        return self._sign(
            revocation_token_claims(
                meeting_id,
                node_id,
                participant_id=participant_id,
                issued_at_ms=self._now_ms(),
                token_id=secrets.token_urlsafe(12),
            )
        )

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _sign(self, claims: dict[str, object]) -> str:
        return jwt.encode(
            claims, self._key.private_key, algorithm=ALGORITHM, headers={"kid": self._key.kid}
        )
