"""What a worker keeps of revocations (media_fleet.service.revocations): which tokens each
covers, and that the records are forgotten once every token they cover has expired."""

from __future__ import annotations

import pytest

from contracts.media_tokens import (
    CLOCK_SKEW_SECONDS,
    MEDIA_TTL_SECONDS,
    MediaClaims,
    RevocationClaims,
)
from media_fleet.service.revocations import Revocations, TooManyRevocations

T0 = 1_800_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def token(participant: str = "alice", *, issued_at: float, meeting: str = "m-1") -> MediaClaims:
    return MediaClaims(
        meeting_id=meeting,
        participant_id=participant,
        node_id="node-a",
        may_publish=True,
        expires_at=int(issued_at) + MEDIA_TTL_SECONDS,
        token_id="t",
        issued_at_ms=int(issued_at * 1000),
    )


def revocation(
    participant: str | None = "alice", *, at: float, meeting: str = "m-1"
) -> RevocationClaims:
    return RevocationClaims(
        meeting_id=meeting,
        node_id="node-a",
        scope="meeting" if participant is None else "participant",
        participant_id=participant,
        revoked_at_ms=int(at * 1000),
        expires_at=int(at) + 30,
        token_id="r",
    )


def test_a_revocation_is_forgotten_once_every_token_it_covers_has_expired() -> None:
    clock = Clock()
    held = Revocations(clock)
    held.revoke(revocation(at=T0))
    oldest = token(issued_at=T0 - MEDIA_TTL_SECONDS)  # still valid with the skew
    assert held.refusal(oldest) is not None
    assert held.refusal(token(issued_at=T0)) is not None
    assert held.refusal(token(issued_at=T0 + 0.001)) is None  # minted after it
    assert held.refusal(token("bob", issued_at=T0)) is None

    # The last token it covers (issued at T0) expires, skew included, at this moment.
    last_moment = T0 + MEDIA_TTL_SECONDS + CLOCK_SKEW_SECONDS
    clock.now = last_moment - 0.001
    assert held.refusal(token(issued_at=T0)) is not None and len(held) == 1
    clock.now = last_moment
    assert held.refusal(token(issued_at=T0)) is None
    assert len(held) == 0


def test_a_node_whose_clock_lags_keeps_the_revocation_longer() -> None:
    # The revocation's time is the control plane's: a node 5 s behind must still hold it until
    # the covered tokens have expired by its own clock.
    clock = Clock(T0 - 5)
    held = Revocations(clock)
    held.revoke(revocation(at=T0))
    clock.now = T0 + MEDIA_TTL_SECONDS + CLOCK_SKEW_SECONDS - 1
    assert len(held) == 1 and held.refusal(token(issued_at=T0)) is not None


def test_a_meeting_revocation_covers_everyone_and_a_later_one_widens_it() -> None:
    clock = Clock()
    held = Revocations(clock)
    held.revoke(revocation(None, at=T0))
    assert held.refusal(token("bob", issued_at=T0 - 1)) == (
        "media token was revoked: the meeting has ended"
    )
    assert held.refusal(token("bob", issued_at=T0 - 1, meeting="m-2")) is None
    # Ended again later (a second session that also ended): the later cut-off holds, and an
    # older revocation replayed afterwards narrows nothing.
    clock.now = T0 + 60
    held.revoke(revocation(None, at=T0 + 60))
    held.revoke(revocation(None, at=T0))
    assert held.refusal(token("bob", issued_at=T0 + 30)) is not None
    clock.now = T0 + MEDIA_TTL_SECONDS + CLOCK_SKEW_SECONDS + 1  # the first one's end
    assert held.refusal(token("bob", issued_at=T0 + 30)) is not None
    assert len(held) == 1


def test_the_number_of_revocations_is_capped_without_forgetting_any_early() -> None:
    clock = Clock()
    held = Revocations(clock, max_revocations=2)
    held.revoke(revocation("alice", at=T0))
    held.revoke(revocation("bob", at=T0))
    held.revoke(revocation("bob", at=T0 + 1))  # the same key again takes no more room
    with pytest.raises(TooManyRevocations):
        held.revoke(revocation("carol", at=T0))
    assert held.refusal(token("alice", issued_at=T0)) is not None
    clock.now = T0 + MEDIA_TTL_SECONDS + CLOCK_SKEW_SECONDS + 2  # both expired
    held.revoke(revocation("carol", at=clock.now))
    assert len(held) == 1
