"""The revocations a worker holds: whose media tokens it refuses, and until when.

The control plane revokes a participant (removed from the meeting) or a whole meeting (ended)
with a revocation token (`contracts.media_tokens`). From then on the worker refuses every media
token of that participant, or of that meeting, issued at or before the revocation; one issued
after it (a new session) passes.

Bounded in time: a revocation covers only tokens issued before it, and each of those expires
`REVOCATION_RETENTION_SECONDS` after its issue at the latest (the verifier refuses longer-lived
tokens), so a revocation is forgotten that long after it was made. Bounded in number too
(`MAX_REVOCATIONS`): only the control plane can sign one, and a worker meets a few per minute,
so reaching the cap means something is wrong; the newest is then refused, never an older one
forgotten early.

Everything runs on the worker's one event loop: no lock.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass

from contracts.media_tokens import REVOCATION_RETENTION_SECONDS, MediaClaims, RevocationClaims

MAX_REVOCATIONS = 10_000

# (meeting id, participant id), or (meeting id, None) for the whole meeting.
RevocationKey = tuple[str, str | None]

REASONS = {
    "meeting": "media token was revoked: the meeting has ended",
    "participant": "media token was revoked: the participant was removed from the meeting",
}


class TooManyRevocations(Exception):
    """The worker holds `MAX_REVOCATIONS` that are all still needed."""


@dataclass(frozen=True)
class _Held:
    revocation: RevocationClaims
    forget_at: float  # epoch seconds, by this node's clock


class Revocations:
    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        retention_seconds: float = REVOCATION_RETENTION_SECONDS,
        max_revocations: int = MAX_REVOCATIONS,
    ) -> None:
        self._clock = clock
        self._retention = retention_seconds
        self._max = max_revocations
        self._held: dict[RevocationKey, _Held] = {}
        # (forget at, key), soonest first. An entry is stale when its key was revoked again
        # later; it is skipped when it comes up.
        self._expiring: list[tuple[float, RevocationKey]] = []

    def __len__(self) -> int:
        return len(self._held)

    def revoke(self, revocation: RevocationClaims) -> None:
        """Hold `revocation`. Raises TooManyRevocations when the cap is reached."""
        self._forget_expired()
        key: RevocationKey = (revocation.meeting_id, revocation.participant_id)
        held = self._held.get(key)
        if held is None and len(self._held) >= self._max:
            raise TooManyRevocations(f"this worker holds {self._max} revocations")
        # The revocation's time is the control plane's; this node's clock may lag or lead it
        # (by up to the skew the verifier allows), so count from whichever is later.
        forget_at = max(self._clock(), revocation.revoked_at_ms / 1000) + self._retention
        if held is not None:
            forget_at = max(forget_at, held.forget_at)
            if held.revocation.revoked_at_ms > revocation.revoked_at_ms:
                revocation = held.revocation  # a replay of an older one narrows nothing
        self._held[key] = _Held(revocation, forget_at)
        heapq.heappush(self._expiring, (forget_at, key))
        if len(self._expiring) > 2 * self._max:
            # Revoked again and again: drop the stale entries rather than let them pile up.
            self._expiring = [(h.forget_at, k) for k, h in self._held.items()]
            heapq.heapify(self._expiring)

    def refusal(self, claims: MediaClaims) -> str | None:
        """Why the media token with `claims` is refused, or None if no revocation covers it."""
        self._forget_expired()
        for key in ((claims.meeting_id, None), (claims.meeting_id, claims.participant_id)):
            held = self._held.get(key)
            if held is not None and held.revocation.covers(claims):
                return REASONS[held.revocation.scope]
        return None

    def _forget_expired(self) -> None:
        now = self._clock()
        while self._expiring and self._expiring[0][0] <= now:
            forget_at, key = heapq.heappop(self._expiring)
            held = self._held.get(key)
            if held is not None and held.forget_at <= forget_at:
                del self._held[key]
