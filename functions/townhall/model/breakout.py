"""Breakout rooms: smaller rooms a session splits into for a while, and back.

A moderator sets the rooms up (names, who goes where: by hand, at random, or each picks),
opens them with a countdown, may broadcast to every room and visit any, and closes them with
a countdown, after which everyone is back in the main room.

Where a participant is, is their own attribute (`Participant.room`, "" for the main room),
changed by their own move (`breakout_move`) or a moderator's (`breakout_assign` while the rooms
are open). Opening and closing change only this `Breakouts` record: a session of hundreds
cannot be moved in one transaction (100 items), so each page moves its participant when the
countdown it was told of ends, and a page that comes back later follows the record.

Room ids carry the setup's generation (`b{generation}r{n}`), so a room of a later setup never
shows the chat or whiteboard of an earlier one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

MAX_ROOMS = 50
MAX_ROOM_NAME = 40
MAX_OPEN_COUNTDOWN_S = 60
MAX_CLOSE_COUNTDOWN_S = 120
MAX_BROADCAST_CHARS = 500
# A room id: generation and number, letters and digits only (it is part of attribute names
# and of a media room's id).
ROOM_ID = re.compile(r"b[0-9]{1,6}r[0-9]{1,2}")
MAIN_ROOM = ""
# A page's clock and the server's differ a little: a move that arrives this early is not
# refused for being before the rooms opened.
CLOCK_SLACK_MS = 2000

Assignment = Literal["manual", "random", "choose"]
State = Literal["none", "ready", "open", "closing"]


@dataclass(frozen=True)
class BreakoutRoom:
    room_id: str
    name: str


@dataclass(frozen=True)
class Breakouts:
    """A session's breakout rooms. `rev` is the seq of the write that made this version."""

    generation: int = 0
    rooms: tuple[BreakoutRoom, ...] = ()
    # participant id -> room id
    assignments: Mapping[str, str] = field(default_factory=dict)
    assignment: Assignment = "manual"
    opens_at: int = 0  # ms; 0 while not open
    closes_at: int = 0  # ms; 0 until a close was asked
    rev: int = 0

    def state(self, now_ms: int) -> State:
        """none: never set up; ready: set up, not open; open; closing: a close was asked and its
        countdown runs. A close whose countdown ran out is `ready` again."""
        if not self.rooms:
            return "none"
        if not self.opens_at or (self.closes_at and now_ms >= self.closes_at):
            return "ready"
        return "closing" if self.closes_at else "open"

    def is_open(self, now_ms: int) -> bool:
        """Whether a participant may be in a breakout room now."""
        return self.state(now_ms) in ("open", "closing") and now_ms + CLOCK_SLACK_MS >= (
            self.opens_at
        )

    def room(self, room_id: str) -> BreakoutRoom | None:
        return next((r for r in self.rooms if r.room_id == room_id), None)

    def name_of(self, room_id: str) -> str:
        found = self.room(room_id)
        return found.name if found else "Main room"

    def changed(self, seq: int, **changes: Any) -> Breakouts:
        return replace(self, **changes, rev=seq)

    def public(self, now_ms: int) -> dict[str, Any]:
        """What every admitted participant sees (`breakouts.changed`, the join snapshot)."""
        return {
            "state": self.state(now_ms),
            "rooms": [{"room_id": r.room_id, "name": r.name} for r in self.rooms],
            "assignments": dict(self.assignments),
            "assignment": self.assignment,
            "opens_at": self.opens_at,
            "closes_at": self.closes_at,
            "rev": self.rev,
        }


def media_room_id(meeting_id: str, room_id: str) -> str:
    """The id a media node knows a room by: the meeting's own for the main room, the meeting's
    with the breakout room's id after a `~` otherwise (a media node hosts rooms, not
    meetings; the placement keeps it in the meeting's partition, `store.placement`)."""
    return f"{meeting_id}~{room_id}" if room_id else meeting_id


def split_media_room_id(media_room: str) -> tuple[str, str]:
    """(meeting id, room id) of a media room id; the room id is "" for a main room."""
    meeting_id, _, room_id = media_room.partition("~")
    return meeting_id, room_id
