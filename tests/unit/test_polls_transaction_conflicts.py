"""A vote (or upvote, or stroke) cancelled only because another transaction was in flight on
the same item is retried as is; a failed condition is answered at once, never retried.

DynamoDB's TransactionConflict cannot be produced by moto, so the store's commit is replaced
by one that raises what SessionStore.commit raises for it (the AWS boundary, nothing else, is
faked)."""

from __future__ import annotations

from typing import Any

import pytest

from townhall.auth.claims import JoinClaims
from townhall.errors import Conflict, Gone
from townhall.model.session import SessionKey
from townhall.notifier import ConnectionNotifier
from townhall.signaling.context import ActionContext, Caller
from townhall.signaling.protocol import Request
from townhall.signaling.transaction import CONFLICT_ATTEMPTS, Write, commit
from townhall.store.connections import ConnectionStore
from townhall.store.sessions import SessionStore, StaleWrite


class ConflictingStore(SessionStore):
    """Fails the first `conflicts` commits with the given failed sort keys."""

    def __init__(self, conflicts: int, failed: tuple[str, ...] = ()) -> None:
        super().__init__("meetings")
        self.conflicts = conflicts
        self.failed = failed
        self.commits: list[dict[str, Any]] = []

    def commit(self, key: SessionKey, seq: int, **writes: Any) -> None:
        self.commits.append({"seq": seq, **writes})
        if len(self.commits) <= self.conflicts:
            raise StaleWrite("cancelled", self.failed)


def _context(store: ConflictingStore) -> tuple[ActionContext, list[float]]:
    pauses: list[float] = []
    context = ActionContext(
        store,
        ConnectionStore("connections"),
        ConnectionNotifier("http://127.0.0.1:9"),
        pause=pauses.append,
    )
    return context, pauses


CALLER = Caller(JoinClaims("m1", "s_1", "p1", "attendee", "Ann", None, 0), "c1")
REQUEST = Request("poll_vote", "r-1", {})
ITEMS = [{"Put": {"TableName": "meetings", "Item": {}}}]


def test_a_conflict_is_retried_with_the_same_items_and_seq() -> None:
    store = ConflictingStore(conflicts=2)
    ctx, pauses = _context(store)
    commit(ctx, CALLER, REQUEST, 41, Write(extra=ITEMS))
    assert [c["seq"] for c in store.commits] == [41, 41, 41]
    assert all(c["extra"] == ITEMS for c in store.commits)
    assert len(pauses) == 2 and all(0 < p < 0.1 for p in pauses)


def test_endless_conflicts_end_in_conflict_after_a_bounded_number_of_tries() -> None:
    store = ConflictingStore(conflicts=100)
    ctx, _ = _context(store)
    with pytest.raises(Conflict):
        commit(ctx, CALLER, REQUEST, 41, Write(extra=ITEMS))
    assert len(store.commits) == CONFLICT_ATTEMPTS


@pytest.mark.parametrize(
    ("failed", "error"),
    [(("V#pl_1#p1",), Conflict("already voted")), (("META",), Gone("ended"))],
)
def test_a_failed_condition_is_answered_at_once(failed: tuple[str, ...], error: Exception) -> None:
    store = ConflictingStore(conflicts=1, failed=failed)
    ctx, pauses = _context(store)
    with pytest.raises(type(error)) as raised:
        commit(
            ctx,
            CALLER,
            REQUEST,
            41,
            Write(extra=ITEMS, refusals={"V#pl_1#p1": Conflict("already voted")}),
        )
    assert len(store.commits) == 1 and pauses == []
    assert str(raised.value) in ("already voted", "the meeting has ended")
