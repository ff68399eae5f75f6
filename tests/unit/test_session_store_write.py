"""SessionStore.commit turns a typed write into one DynamoDB transaction, and a cancelled one
back into the error the failed item means, so nothing above store/ sees a key or a reason.

The DynamoDB client is replaced by one that records the request and cancels it with the
given reasons (the AWS boundary, nothing else, is faked)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from townhall.model.collaboration import Poll
from townhall.model.participant import Participant
from townhall.model.session import Session, SessionKey
from townhall.store import dynamo
from townhall.store.sessions import SessionStore
from townhall.store.writes import (
    AlreadyVoted,
    CastVote,
    CreatePoll,
    DuplicateRequest,
    EndSession,
    LimitReached,
    LockSession,
    ParticipantChange,
    PollClosed,
    SessionEnded,
    StaleWrite,
    TransactionConflict,
)

KEY = SessionKey("m1", "s1")
VOTE = [CastVote("pl_1", "p1", (0, 2), at=5)]


class CancellingClient:
    """Records each TransactWriteItems; cancels it with `reasons` (None: it lands)."""

    def __init__(self, reasons: list[str] | None) -> None:
        self.reasons = reasons
        self.transactions: list[list[dict[str, Any]]] = []

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:
        self.transactions.append(TransactItems)
        if self.reasons is None:
            return {}
        raise ClientError(
            {
                "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                "CancellationReasons": [{"Code": code} for code in self.reasons],
            },
            "TransactWriteItems",
        )


@pytest.fixture
def client(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> CancellingClient:
    fake = CancellingClient(getattr(request, "param", None))
    monkeypatch.setattr(dynamo, "client", lambda: fake)
    return fake


def _sort_keys(transaction: list[dict[str, Any]]) -> list[str]:
    bodies = [next(iter(item.values())) for item in transaction]
    return [(body.get("Key") or body["Item"])["sk"]["S"] for body in bodies]


def test_a_vote_is_one_transaction_with_the_request_and_the_session_check(
    client: CancellingClient,
) -> None:
    SessionStore("meetings").commit(KEY, 7, VOTE, request=("p1", "r-1"))
    (transaction,) = client.transactions
    assert _sort_keys(transaction) == ["R#p1#r-1", "META", "V#pl_1#p1", "POLL#pl_1"]
    assert "ConditionCheck" in transaction[1]
    vote = transaction[2]["Put"]
    assert vote["ConditionExpression"] == "attribute_not_exists(pk)"
    assert vote["Item"]["choices"] == {"L": [{"N": "0"}, {"N": "2"}]}
    counts = transaction[3]["Update"]["UpdateExpression"]
    assert counts.startswith("SET counts[0] = counts[0] + :one, counts[2] = counts[2] + :one")


@pytest.mark.parametrize(
    ("client", "error", "message"),
    [
        (["None", "None", "ConditionalCheckFailed", "None"], AlreadyVoted, "already voted"),
        (["None", "None", "None", "ConditionalCheckFailed"], PollClosed, "the poll is closed"),
        (["None", "ConditionalCheckFailed", "None", "None"], SessionEnded, "has ended"),
        # What the action named comes before the session's end.
        (
            ["None", "ConditionalCheckFailed", "ConditionalCheckFailed", "None"],
            AlreadyVoted,
            "already voted",
        ),
        (["ConditionalCheckFailed", "None", "None", "None"], DuplicateRequest, "r-1"),
        (["None", "None", "TransactionConflict", "None"], TransactionConflict, "in flight"),
    ],
    indirect=["client"],
)
def test_a_cancelled_vote_is_answered_by_what_failed(
    client: CancellingClient, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        SessionStore("meetings").commit(KEY, 7, VOTE, request=("p1", "r-1"))


@pytest.mark.parametrize("client", [["ConditionalCheckFailed", "None"]], indirect=True)
def test_a_participant_changed_since_it_was_read_is_a_stale_write(
    client: CancellingClient,
) -> None:
    before = Participant("m1", "s1", "p2", "Bo", "attendee", "admitted", rev=3)
    with pytest.raises(StaleWrite):
        SessionStore("meetings").commit(KEY, 7, [ParticipantChange(before, {"muted": True})])
    update = client.transactions[0][0]["Update"]
    assert update["ConditionExpression"] == "attribute_exists(pk) AND #rev_c = :rev_before"
    assert update["ExpressionAttributeValues"][":rev_before"] == {"N": "3"}


@pytest.mark.parametrize("client", [["None", "None", "ConditionalCheckFailed"]], indirect=True)
def test_a_poll_past_the_cap_is_refused_with_the_cap(client: CancellingClient) -> None:
    poll = Poll("pl_1", "Lunch?", ("yes", "no"), False, "open", (0, 0), 0, 0, "p1", 1)
    with pytest.raises(LimitReached, match="at most 20 polls"):
        SessionStore("meetings").commit(KEY, 7, [CreatePoll(poll)])
    assert _sort_keys(client.transactions[0]) == ["META", "POLL#pl_1", "COLLAB"]


def test_ending_changes_the_session_its_index_row_and_the_meeting(
    client: CancellingClient,
) -> None:
    session = Session("m1", "s1", 1000, "p1", "Standup", "meeting", "u1", False, 9)
    SessionStore("meetings").commit(KEY, 7, [EndSession(session, ended_at=2000)])
    (transaction,) = client.transactions
    assert _sort_keys(transaction) == ["META", f"SESSION#{1000:013d}#s1", "META"]
    meta = transaction[0]["Update"]
    assert meta["UpdateExpression"] == "SET #ended_at = :ended_at"
    assert meta["Key"]["pk"] == {"S": "M#m1#S#s1"}
    assert transaction[2]["Update"]["Key"]["pk"] == {"S": "M#m1"}


def test_one_write_changes_the_session_at_most_once(client: CancellingClient) -> None:
    with pytest.raises(ValueError):
        SessionStore("meetings").commit(KEY, 7, [LockSession(True), LockSession(False)])
    assert client.transactions == []
