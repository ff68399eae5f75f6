"""The shared whiteboard in the Meetings table (a session's partition, `store.keys.session_pk`).

- `W#{seq:012d}`: one stroke (by, color, width, points as compact JSON), keyed by the seq of
  the action that drew it, so a query returns strokes in drawing order. Strokes are items of
  their own: a whiteboard would outgrow DynamoDB's 400 KB item limit long before the cap.
- `COLLAB`: `strokes` counts the strokes since the last clear (capped) and `wb_cleared` is
  the seq of the last clear. Clearing moves that mark in its transaction instead of deleting
  up to thousands of items inside one action; reads start after it, and the hidden strokes
  are deleted afterwards as housekeeping.

Each breakout room has a board of its own: `W{room_id}#{seq:012d}` strokes (a prefix no main
board key shares) and `strokes_{room_id}` / `wb_cleared_{room_id}` in `COLLAB`.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from townhall.model.collaboration import Stroke
from townhall.model.session import SessionKey
from townhall.store import dynamo, limits
from townhall.store.keys import session_pk
from townhall.store.writes import AddStroke, ClearWhiteboard, LimitReached

MAX_STROKES = 5000  # per meeting, since the last clear


def board_prefix(room: str) -> str:
    return f"W{room}#"


def stroke_sk(seq: int, room: str = "") -> str:
    return f"{board_prefix(room)}{seq:012d}"


def _counter(name: str, room: str) -> str:
    return f"{name}_{room}" if room else name


def add_stroke(table: str, session: SessionKey, op: AddStroke) -> list[dynamo.TransactItem]:
    """The stroke, and the stroke counter (refused past the cap)."""
    stroke = op.stroke
    item = {
        "pk": session_pk(session),
        "sk": stroke_sk(stroke.stroke_id, stroke.room),
        "stroke_id": stroke.stroke_id,
        "by": stroke.by,
        "color": stroke.color,
        "width": stroke.width,
        "points": json.dumps([list(p) for p in stroke.points], separators=(",", ":")),
    }
    return [
        dynamo.TransactItem(dynamo.put_new(table, item)),
        dynamo.TransactItem(
            limits.count_up(table, session, _counter("strokes", stroke.room), MAX_STROKES),
            LimitReached(f"the whiteboard is full ({MAX_STROKES} strokes); clear it"),
        ),
    ]


def clear_whiteboard(
    table: str, session: SessionKey, op: ClearWhiteboard
) -> list[dynamo.TransactItem]:
    """Move the clear mark to the clearing action's seq and reset the stroke counter."""
    update = dynamo.update(
        table,
        limits.collab_key(session),
        "SET #strokes = :zero, #cleared = :seq",
        {":zero": 0, ":seq": op.seq},
        names={
            "#strokes": _counter("strokes", op.room_id),
            "#cleared": _counter("wb_cleared", op.room_id),
        },
    )
    return [dynamo.TransactItem(update)]


class WhiteboardRecords(Protocol):
    """A session's whiteboard as the services read and tidy it (WhiteboardStore is the
    DynamoDB one; strokes are written by `AddStroke` and hidden by `ClearWhiteboard`)."""

    def cleared_at(self, session: SessionKey, room: str = "") -> int: ...

    def strokes(
        self,
        session: SessionKey,
        *,
        after: int,
        before: int | None,
        budget: int,
        room: str = "",
    ) -> tuple[list[Stroke], bool]: ...

    def delete_before(self, session: SessionKey, seq: int, room: str = "") -> int: ...


@dynamo.store_boundary
class WhiteboardStore:
    def __init__(self, table: str) -> None:
        self._table = table

    def delete_before(self, session: SessionKey, seq: int, room: str = "") -> int:
        """Delete the strokes a clear hid (drawn before `seq`): housekeeping after the clear's
        transaction, since reads already start after the mark. Bounded by the cap; returns how
        many went."""
        keys = [
            {"pk": item["pk"], "sk": item["sk"]}
            for item in dynamo.query_all(
                self._table,
                "pk = :pk AND sk BETWEEN :lo AND :hi",
                {
                    ":pk": session_pk(session),
                    ":lo": board_prefix(room),
                    ":hi": stroke_sk(seq - 1, room),
                },
                projection="pk, sk",
                limit_pages=MAX_STROKES // 100 + 1,
            )
        ][: MAX_STROKES * 2]
        return dynamo.delete_keys(self._table, keys)

    def cleared_at(self, session: SessionKey, room: str = "") -> int:
        counters = limits.counters(self._table, session)
        return int(counters.get(_counter("wb_cleared", room), 0))

    def strokes(
        self,
        session: SessionKey,
        *,
        after: int,
        before: int | None,
        budget: int,
        room: str = "",
    ) -> tuple[list[Stroke], bool]:
        """The newest strokes drawn after seq `after` (and before seq `before`) whose JSON
        fits in `budget` bytes, oldest first, and whether older ones were left out."""
        upper = stroke_sk(before - 1, room) if before is not None else board_prefix(room) + "~"
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {
                ":pk": dynamo.value(session_pk(session)),
                ":lo": dynamo.value(stroke_sk(after + 1, room)),
                ":hi": dynamo.value(upper),
            },
            "ScanIndexForward": False,
            "ConsistentRead": True,
            "Limit": 200,
        }
        found: list[Stroke] = []
        used = 0
        for _ in range(MAX_STROKES // 200 + 1):  # bounded: the cap bounds the pages
            page = dynamo.client().query(**request)
            for raw in page.get("Items", []):
                item = dynamo.from_ddb(raw)
                stroke = Stroke(
                    stroke_id=int(item["stroke_id"]),
                    by=item["by"],
                    color=item["color"],
                    width=item["width"],
                    points=tuple((float(x), float(y)) for x, y in json.loads(item["points"])),
                    room=room,
                )
                size = len(item["points"]) + 100
                if used + size > budget:
                    found.reverse()
                    return found, True
                used += size
                found.append(stroke)
            last = page.get("LastEvaluatedKey")
            if not last:
                break
            request["ExclusiveStartKey"] = last
        found.reverse()
        return found, False
