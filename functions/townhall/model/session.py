"""A session: one run of a meeting, from the moment it is started until it ends.

A meeting is a series of sessions. A session is not tied to an occurrence of the schedule: a
host may start a weekly meeting early, twice on one day or on an unscheduled day, and each
start is a new session. Everything that happens in the room (participants, chat, polls,
questions, the whiteboard, attendance) belongs to one session; ending it ("End for all") ends
only the session, and the meeting can be started again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

MeetingKind = Literal["meeting", "webinar"]


@dataclass(frozen=True)
class SessionKey:
    """Names one session of one meeting."""

    meeting_id: str
    session_id: str


@dataclass
class Session:
    meeting_id: str
    session_id: str
    started_at: int  # ms
    started_by: str  # participant id
    # The meeting's settings as they were when the session started: the room runs on these.
    title: str
    kind: MeetingKind
    host_id: str
    waiting_room: bool
    video_slots: int
    locked: bool = False
    ended_at: int = 0  # ms; 0 while it runs
    seq: int = 0  # the session's event counter

    @property
    def key(self) -> SessionKey:
        return SessionKey(self.meeting_id, self.session_id)

    @property
    def running(self) -> bool:
        return not self.ended_at

    def public(self) -> dict[str, Any]:
        """What participants see of the session (the snapshot's `meeting`)."""
        return {
            "meeting_id": self.meeting_id,
            "session_id": self.session_id,
            "title": self.title,
            "kind": self.kind,
            "locked": self.locked,
            "waiting_room": self.waiting_room,
            "video_slots": self.video_slots,
            "host_id": self.host_id,
            "started_at": self.started_at,
        }
