"""Breakout rooms in the Meetings table (a session's partition, `store.keys.session_pk`).

- `BREAKOUTS`: the session's rooms (`townhall.model.breakout.Breakouts`): generation, rooms,
  assignments, how people are assigned, when they open and close, and `rev`, the seq of the
  write that made it. Each change replaces it, conditional on `rev` (`SetBreakouts`).
- `RV#{participant_id}#{at:013d}#{seq:012d}`: the participant entered a room (or the main room,
  `room_id` "") at `at` ms: the summary's who was in which room, and when (`EnterRoom`).

One item holds the rooms and the assignments: 50 rooms and a thousand assignments are about
40 KB, far from the 400 KB item limit, and the action that changes them reads it whole anyway.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from townhall.model.breakout import BreakoutRoom, Breakouts
from townhall.model.session import SessionKey
from townhall.store import dynamo
from townhall.store.keys import session_pk
from townhall.store.writes import EnterRoom, SetBreakouts

BREAKOUTS_SK = "BREAKOUTS"
VISIT_PREFIX = "RV#"


def _key(session: SessionKey) -> dict[str, str]:
    return {"pk": session_pk(session), "sk": BREAKOUTS_SK}


def breakouts_from_item(item: dict[str, Any]) -> Breakouts:
    rooms = json.loads(item.get("rooms", "[]"))
    assignments = json.loads(item.get("assignments", "{}"))
    return Breakouts(
        generation=int(item.get("generation", 0)),
        rooms=tuple(BreakoutRoom(room_id=r["room_id"], name=r["name"]) for r in rooms),
        assignments={str(k): str(v) for k, v in assignments.items()},
        assignment=item.get("assignment", "manual"),
        opens_at=int(item.get("opens_at", 0)),
        closes_at=int(item.get("closes_at", 0)),
        rev=int(item.get("rev", 0)),
    )


def set_breakouts(table: str, session: SessionKey, op: SetBreakouts) -> list[dynamo.TransactItem]:
    """The whole record, conditional on it being as the action read it."""
    after = op.after
    item = {
        **_key(session),
        "generation": after.generation,
        # Kept as JSON strings: read whole, never queried or updated by part.
        "rooms": json.dumps(
            [{"room_id": r.room_id, "name": r.name} for r in after.rooms], ensure_ascii=False
        ),
        "assignments": json.dumps(dict(after.assignments), separators=(",", ":")),
        "assignment": after.assignment,
        "opens_at": after.opens_at,
        "closes_at": after.closes_at,
        "rev": after.rev,
    }
    put: dict[str, Any] = dynamo.put(table, item)
    if op.before_rev:
        put["Put"]["ConditionExpression"] = "rev = :rev"
        put["Put"]["ExpressionAttributeValues"] = {":rev": dynamo.value(op.before_rev)}
    else:
        put["Put"]["ConditionExpression"] = "attribute_not_exists(pk)"
    return [dynamo.TransactItem(put)]


def enter_room(table: str, session: SessionKey, op: EnterRoom) -> list[dynamo.TransactItem]:
    item = {
        "pk": session_pk(session),
        "sk": f"{VISIT_PREFIX}{op.participant_id}#{op.at:013d}#{op.seq:012d}",
        "participant_id": op.participant_id,
        "room_id": op.room_id,
        "at": op.at,
    }
    return [dynamo.TransactItem(dynamo.put(table, item))]


class BreakoutRecords(Protocol):
    """A session's breakout rooms as signaling and the summary read them (BreakoutStore is the
    DynamoDB one; they are written by `SetBreakouts` and `EnterRoom`)."""

    def get(self, session: SessionKey) -> Breakouts: ...

    def visits(self, session: SessionKey) -> list[dict[str, Any]]: ...


@dynamo.store_boundary
class BreakoutStore:
    def __init__(self, table: str) -> None:
        self._table = table

    def get(self, session: SessionKey) -> Breakouts:
        """The session's breakout rooms (strongly consistent); an empty record if none."""
        item = dynamo.get(self._table, _key(session))
        return breakouts_from_item(item) if item else Breakouts()

    def visits(self, session: SessionKey) -> list[dict[str, Any]]:
        """Every room entry of the session (participant_id, room_id, at), by time."""
        items = dynamo.query_all(
            self._table,
            "pk = :pk AND begins_with(sk, :v)",
            {":pk": session_pk(session), ":v": VISIT_PREFIX},
            consistent=True,
        )
        visits = [
            {
                "participant_id": str(i["participant_id"]),
                "room_id": str(i.get("room_id", "")),
                "at": int(i["at"]),
            }
            for i in items
        ]
        return sorted(visits, key=lambda v: v["at"])
