"""Attendance: one item per interval a person spent in a session, for its summary.

`A#{participant_id}#{joined_at_ms:013d}` holds participant_id, joined_at and, once the
interval is over, left_at (both ms). An interval starts when a participant is admitted on a
connection (join, or a moderator's admit) and ends when that connection goes (leave, a drop,
a gone connection) or they are removed. The participant item keeps the start of the interval
in progress (`session_at`), so the end is one put in the same transaction as the participant
change. A reconnect that replaces a live connection continues its interval. Ending the
session writes nothing per person: an open interval of an ended session ends at `ended_at`.

A participant id is a person's (their account, or their guest identity), so a person who
joins several times is one attendee with several intervals.
"""

from __future__ import annotations

from typing import Any, Protocol

from townhall.model.session import SessionKey
from townhall.store import dynamo
from townhall.store.keys import session_pk
from townhall.store.writes import CloseAttendance, OpenAttendance

INTERVAL_PREFIX = "A#"


def interval_item(
    session: SessionKey, participant_id: str, joined_at: int, left_at: int | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": session_pk(session),
        "sk": f"{INTERVAL_PREFIX}{participant_id}#{joined_at:013d}",
        "participant_id": participant_id,
        "joined_at": joined_at,
    }
    if left_at is not None:
        item["left_at"] = left_at
    return item


def open_attendance(
    table: str, session: SessionKey, op: OpenAttendance
) -> list[dynamo.TransactItem]:
    item = interval_item(session, op.participant_id, op.joined_at)
    return [dynamo.TransactItem(dynamo.put(table, item))]


def close_attendance(
    table: str, session: SessionKey, op: CloseAttendance
) -> list[dynamo.TransactItem]:
    """The interval again, now with its end (the same key: it replaces the open one)."""
    item = interval_item(session, op.participant_id, op.joined_at, op.left_at)
    return [dynamo.TransactItem(dynamo.put(table, item))]


class AttendanceRecords(Protocol):
    """A session's attendance intervals as the summary reads them (AttendanceStore is the
    DynamoDB one; intervals are written by `OpenAttendance` and `CloseAttendance`)."""

    def intervals(self, session: SessionKey) -> list[dict[str, Any]]: ...


@dynamo.store_boundary
class AttendanceStore:
    def __init__(self, table: str) -> None:
        self._table = table

    def intervals(self, session: SessionKey) -> list[dict[str, Any]]:
        items = dynamo.query_all(
            self._table,
            "pk = :pk AND begins_with(sk, :a)",
            {":pk": session_pk(session), ":a": INTERVAL_PREFIX},
            consistent=True,
        )
        return sorted((dynamo.public(i) for i in items), key=lambda s: s["joined_at"])
