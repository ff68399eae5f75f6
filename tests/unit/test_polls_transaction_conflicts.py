"""A vote (or upvote, or stroke) cancelled only because another transaction was in flight on
the same item is retried as is; a failed condition is answered at once, never retried.

DynamoDB's TransactionConflict cannot be produced by moto, so the store's commit is replaced
by one that raises what SessionStore.commit raises for it (the AWS boundary, nothing else, is
faked)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from townhall.auth.claims import JoinClaims
from townhall.errors import Conflict, DomainError
from townhall.model.session import SessionKey
from townhall.notifier import ConnectionNotifier
from townhall.signaling.context import ActionContext, Caller
from townhall.signaling.protocol import Request
from townhall.signaling.transaction import CONFLICT_ATTEMPTS, commit
from townhall.store.breakouts import BreakoutStore
from townhall.store.chat import ChatStore
from townhall.store.connections import ConnectionStore
from townhall.store.participants import ParticipantStore
from townhall.store.polls import PollStore
from townhall.store.questions import QuestionStore
from townhall.store.sessions import SessionStore
from townhall.store.whiteboard import WhiteboardStore
from townhall.store.writes import (
    AlreadyVoted,
    CastVote,
    Operation,
    SessionEnded,
    TransactionConflict,
)


class ConflictingStore(SessionStore):
    """Fails the first `conflicts` commits: with the failed condition's error if one is given,
    else as cancelled by a concurrent transaction."""

    def __init__(self, conflicts: int, refused: DomainError | None = None) -> None:
        super().__init__("meetings")
        self.conflicts = conflicts
        self.refused = refused
        self.commits: list[dict[str, Any]] = []

    def commit(
        self,
        key: SessionKey,
        seq: int,
        write: Sequence[Operation],
        *,
        request: tuple[str, str] | None = None,
    ) -> None:
        self.commits.append({"seq": seq, "write": write, "request": request})
        if len(self.commits) <= self.conflicts:
            raise self.refused or TransactionConflict("cancelled")


def _context(store: ConflictingStore) -> tuple[ActionContext, list[float]]:
    pauses: list[float] = []
    context = ActionContext(
        sessions=store,
        participants=ParticipantStore("meetings"),
        chat=ChatStore("meetings"),
        polls=PollStore("meetings"),
        questions=QuestionStore("meetings"),
        whiteboard=WhiteboardStore("meetings"),
        connections=ConnectionStore("connections"),
        breakouts=BreakoutStore("meetings"),
        notifier=ConnectionNotifier("http://127.0.0.1:9"),
        pause=pauses.append,
    )
    return context, pauses


CALLER = Caller(JoinClaims("m1", "s_1", "p1", "attendee", "Ann", None, 0), "c1")
REQUEST = Request("poll_vote", "r-1", {})
ITEMS = [CastVote("pl_1", "p1", (0,), at=0)]


def test_a_conflict_is_retried_with_the_same_items_and_seq() -> None:
    store = ConflictingStore(conflicts=2)
    ctx, pauses = _context(store)
    commit(ctx, CALLER, REQUEST, 41, ITEMS)
    assert [c["seq"] for c in store.commits] == [41, 41, 41]
    assert all(c["write"] == ITEMS for c in store.commits)
    assert len(pauses) == 2 and all(0 < p < 0.1 for p in pauses)


def test_endless_conflicts_end_in_conflict_after_a_bounded_number_of_tries() -> None:
    store = ConflictingStore(conflicts=100)
    ctx, _ = _context(store)
    with pytest.raises(Conflict):
        commit(ctx, CALLER, REQUEST, 41, ITEMS)
    assert len(store.commits) == CONFLICT_ATTEMPTS


# What the store raises for a failed condition (tests/unit/test_session_store_write.py checks
# that it does, item by item).
@pytest.mark.parametrize("error", [AlreadyVoted("already voted"), SessionEnded()])
def test_a_failed_condition_is_answered_at_once(error: DomainError) -> None:
    store = ConflictingStore(conflicts=1, refused=error)
    ctx, pauses = _context(store)
    with pytest.raises(type(error)) as raised:
        commit(ctx, CALLER, REQUEST, 41, ITEMS)
    assert len(store.commits) == 1 and pauses == []
    assert str(raised.value) in ("already voted", "the meeting has ended")
