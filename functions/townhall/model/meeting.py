"""A meeting: what hosts schedule and share a link to. It runs as a series of sessions
(`townhall.model.session`); the meeting itself never ends."""

from __future__ import annotations

from dataclasses import dataclass

from townhall.model.schedule import Schedule
from townhall.model.session import MeetingKind, SessionKey


@dataclass
class Meeting:
    meeting_id: str
    host_id: str
    title: str
    kind: MeetingKind
    schedule: Schedule
    passcode: str | None
    waiting_room: bool
    created_at: int
    updated_at: int
    video_slots: int = 9
    # Guests may start a session before a host or co-host is there (never for a webinar).
    allow_before_host: bool = False
    # The session running now, if any.
    live_session_id: str | None = None
    # When the last session started (ms), for the dashboard; 0 if never.
    last_session_at: int = 0

    @property
    def live(self) -> bool:
        return self.live_session_id is not None

    @property
    def guests_may_start(self) -> bool:
        return self.allow_before_host and self.kind != "webinar"

    def session_key(self, session_id: str) -> SessionKey:
        return SessionKey(self.meeting_id, session_id)
