"""A vote (or upvote, or stroke) cancelled only because another transaction was in flight on
the same item is retried as is; a failed condition is answered at once, never retried.

DynamoDB's TransactionConflict cannot be produced by moto, so the store is a stand-in that
raises what MeetingStore.commit raises for it (the AWS boundary, nothing else, is faked)."""

from __future__ import annotations

from typing import Any

import pytest

from townhall.auth.claims import JoinClaims
from townhall.errors import Conflict, Gone
from townhall.signaling.context import Caller
from townhall.signaling.protocol import Request
from townhall.signaling.service import CONFLICT_ATTEMPTS, SignalingService
from townhall.store.meetings import StaleWrite


class ConflictingStore:
    """Fails the first `conflicts` commits with the given failed sort keys."""

    table = "meetings"

    def __init__(self, conflicts: int, failed: tuple[str, ...] = ()) -> None:
        self.conflicts = conflicts
        self.failed = failed
        self.commits: list[dict[str, Any]] = []

    def commit(self, meeting_id: str, seq: int, **writes: Any) -> None:
        self.commits.append({"seq": seq, **writes})
        if len(self.commits) <= self.conflicts:
            raise StaleWrite("cancelled", self.failed)


def _service(store: ConflictingStore) -> tuple[SignalingService, list[float]]:
    pauses: list[float] = []
    service = SignalingService(store, None, None, pause=pauses.append)  # type: ignore[arg-type]
    return service, pauses


CALLER = Caller(JoinClaims("m1", "p1", "attendee", "Ann", None, 0), "c1")
REQUEST = Request("poll_vote", "r-1", {})
ITEMS = [{"Put": {"TableName": "meetings", "Item": {}}}]


def test_a_conflict_is_retried_with_the_same_items_and_seq() -> None:
    store = ConflictingStore(conflicts=2)
    service, pauses = _service(store)
    service._commit_refusing(CALLER, REQUEST, 41, ITEMS, {})
    assert [c["seq"] for c in store.commits] == [41, 41, 41]
    assert all(c["extra"] == ITEMS for c in store.commits)
    assert len(pauses) == 2 and all(0 < p < 0.1 for p in pauses)


def test_endless_conflicts_end_in_conflict_after_a_bounded_number_of_tries() -> None:
    store = ConflictingStore(conflicts=100)
    service, _ = _service(store)
    with pytest.raises(Conflict):
        service._commit_refusing(CALLER, REQUEST, 41, ITEMS, {})
    assert len(store.commits) == CONFLICT_ATTEMPTS


@pytest.mark.parametrize(
    ("failed", "error"),
    [(("V#pl_1#p1",), Conflict("already voted")), (("META",), Gone("ended"))],
)
def test_a_failed_condition_is_answered_at_once(failed: tuple[str, ...], error: Exception) -> None:
    store = ConflictingStore(conflicts=1, failed=failed)
    service, pauses = _service(store)
    with pytest.raises(type(error)) as raised:
        service._commit_refusing(
            CALLER, REQUEST, 41, ITEMS, {"V#pl_1#p1": Conflict("already voted")}
        )
    assert len(store.commits) == 1 and pauses == []
    assert str(raised.value) in ("already voted", "the meeting has ended")
