"""Polls and votes in the Meetings table (a session's partition, `store.keys.session_pk`).

- `POLL#{poll_id}`: question, options, multiple, status (open, closed), counts (one per
  option), voters, created_at (ms), created_by, and `version`, raised by one on every change.
  DynamoDB applies the writes to one item in order, so a higher version is a newer state:
  clients keep the poll with the highest version, whichever event arrives first.
- `V#{poll_id}#{participant_id}`: one participant's choices. It is created with
  `attribute_not_exists` in the same transaction that raises the counts, so a second vote
  fails as a whole and nobody's choices ever leave the server.
"""

from __future__ import annotations

from typing import Any, Protocol

from townhall.model.collaboration import Poll
from townhall.model.session import SessionKey
from townhall.store import dynamo, limits
from townhall.store.keys import session_pk
from townhall.store.writes import (
    AlreadyVoted,
    CastVote,
    ClosePoll,
    CreatePoll,
    LimitReached,
    PollClosed,
)

MAX_POLLS = 20  # per meeting: every poll rides in the join snapshot


def poll_sk(poll_id: str) -> str:
    return f"POLL#{poll_id}"


def vote_sk(poll_id: str, participant_id: str) -> str:
    return f"V#{poll_id}#{participant_id}"


def poll_from_item(item: dict[str, Any]) -> Poll:
    return Poll(
        poll_id=item["poll_id"],
        question=item["question"],
        options=tuple(item["options"]),
        multiple=bool(item["multiple"]),
        status=item["status"],
        counts=tuple(int(c) for c in item["counts"]),
        voters=int(item["voters"]),
        created_at=int(item["created_at"]),
        created_by=item["created_by"],
        version=int(item["version"]),
    )


def create_poll(table: str, session: SessionKey, op: CreatePoll) -> list[dynamo.TransactItem]:
    """The poll, and the session's poll counter (refused past the cap)."""
    item = {"pk": session_pk(session), "sk": poll_sk(op.poll.poll_id), **op.poll.public()}
    return [
        dynamo.TransactItem(dynamo.put_new(table, item)),
        dynamo.TransactItem(
            limits.count_up(table, session, "polls", MAX_POLLS),
            LimitReached(f"a meeting holds at most {MAX_POLLS} polls"),
        ),
    ]


def cast_vote(table: str, session: SessionKey, op: CastVote) -> list[dynamo.TransactItem]:
    """The voter's record (refused on a second vote) and the counts (refused unless the poll
    is open)."""
    pk = session_pk(session)
    record = {
        "pk": pk,
        "sk": vote_sk(op.poll_id, op.participant_id),
        "poll_id": op.poll_id,
        "participant_id": op.participant_id,
        "choices": list(op.choices),
        "at": op.at,
    }
    raises = ", ".join(f"counts[{i}] = counts[{i}] + :one" for i in op.choices)
    return [
        dynamo.TransactItem(dynamo.put_new(table, record), AlreadyVoted()),
        dynamo.TransactItem(
            dynamo.update(
                table,
                {"pk": pk, "sk": poll_sk(op.poll_id)},
                f"SET {raises}, voters = voters + :one ADD version :one",
                {":one": 1, ":open": "open"},
                condition="attribute_exists(pk) AND #s = :open",
                names={"#s": "status"},
            ),
            PollClosed(),
        ),
    ]


def close_poll(table: str, session: SessionKey, op: ClosePoll) -> list[dynamo.TransactItem]:
    update = dynamo.update(
        table,
        {"pk": session_pk(session), "sk": poll_sk(op.poll_id)},
        "SET #s = :closed, closed_at = :at ADD version :one",
        {":one": 1, ":open": "open", ":closed": "closed", ":at": op.at},
        condition="attribute_exists(pk) AND #s = :open",
        names={"#s": "status"},
    )
    return [dynamo.TransactItem(update, PollClosed("the poll is already closed"))]


class PollRecords(Protocol):
    """A session's polls as the services read them (PollStore is the DynamoDB one; they are
    written by `CreatePoll`, `CastVote` and `ClosePoll`)."""

    def polls(self, session: SessionKey) -> list[Poll]: ...

    def get(self, session: SessionKey, poll_id: str) -> Poll | None: ...

    def get_with_vote(
        self, session: SessionKey, poll_id: str, participant_id: str
    ) -> tuple[Poll | None, list[int] | None]: ...

    def choices_of(
        self, session: SessionKey, participant_id: str, poll_ids: list[str]
    ) -> dict[str, list[int]]: ...


@dynamo.store_boundary
class PollStore:
    def __init__(self, table: str) -> None:
        self._table = table

    def polls(self, session: SessionKey) -> list[Poll]:
        items = dynamo.query_all(
            self._table,
            "pk = :pk AND begins_with(sk, :p)",
            {":pk": session_pk(session), ":p": "POLL#"},
            consistent=True,
        )
        return sorted((poll_from_item(i) for i in items), key=lambda p: p.created_at)

    def get(self, session: SessionKey, poll_id: str) -> Poll | None:
        item = dynamo.get(self._table, {"pk": session_pk(session), "sk": poll_sk(poll_id)})
        return poll_from_item(item) if item else None

    def get_with_vote(
        self, session: SessionKey, poll_id: str, participant_id: str
    ) -> tuple[Poll | None, list[int] | None]:
        """The poll and the participant's choices in it (None if they have not voted): one
        round trip, so a second vote is refused before it costs an event number."""
        pk = session_pk(session)
        found = {
            i["sk"]: i
            for i in dynamo.batch_get(
                self._table,
                [
                    {"pk": pk, "sk": poll_sk(poll_id)},
                    {"pk": pk, "sk": vote_sk(poll_id, participant_id)},
                ],
            )
        }
        poll = found.get(poll_sk(poll_id))
        vote = found.get(vote_sk(poll_id, participant_id))
        return (poll_from_item(poll) if poll else None, vote["choices"] if vote else None)

    def choices_of(
        self, session: SessionKey, participant_id: str, poll_ids: list[str]
    ) -> dict[str, list[int]]:
        """The participant's own choices in each of these polls they voted in."""
        pk = session_pk(session)
        keys = [{"pk": pk, "sk": vote_sk(p, participant_id)} for p in poll_ids[:100]]
        return {i["poll_id"]: i["choices"] for i in dynamo.batch_get(self._table, keys)}
