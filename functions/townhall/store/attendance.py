"""Attendance: one item per participant session, for the summary after the meeting.

`S#{participant_id}#{joined_at_ms:013d}` holds participant_id, joined_at and, once the
session is over, left_at (both ms). A session starts when a participant is admitted on a
connection (join, or a moderator's admit) and ends when that connection goes (disconnect,
leave, a gone connection) or they are removed. The participant item keeps the start of the
session in progress (`session_at`), so the end is one put in the same transaction as the
participant change. A reconnect that replaces a live connection continues its session. Ending
the meeting writes nothing per person: an open session of an ended meeting ends at `ended_at`.
"""

from __future__ import annotations

from typing import Any

from townhall.store import dynamo
from townhall.store.meetings import meeting_pk


def session_item(
    meeting_id: str, participant_id: str, joined_at: int, left_at: int | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": meeting_pk(meeting_id),
        "sk": f"S#{participant_id}#{joined_at:013d}",
        "participant_id": participant_id,
        "joined_at": joined_at,
    }
    if left_at is not None:
        item["left_at"] = left_at
    return item


class AttendanceStore:
    def __init__(self, table: str) -> None:
        self._table = table

    def sessions(self, meeting_id: str) -> list[dict[str, Any]]:
        items = dynamo.query_all(
            self._table,
            "pk = :pk AND begins_with(sk, :s)",
            {":pk": meeting_pk(meeting_id), ":s": "S#"},
            consistent=True,
        )
        return sorted((dynamo.public(i) for i in items), key=lambda s: s["joined_at"])
