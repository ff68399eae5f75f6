"""A meeting: what hosts schedule and share a link to. It runs as a series of sessions
(`townhall.model.session`); the meeting itself never ends."""

from __future__ import annotations

from dataclasses import dataclass

from townhall.model.schedule import Schedule
from townhall.model.session import MeetingKind, SessionKey

# How many co-hosts a meeting lists at most, and how many video tiles it may show.
MAX_COHOSTS = 10
MAX_VIDEO_SLOTS = 25


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
    # Co-hosts: account emails (normalized, lower case) the host listed. Signed in as one of
    # them, a person may start a session (a webinar too), is not asked for the passcode, and
    # joins a session as a co-host.
    cohosts: tuple[str, ...] = ()
    # The session running now, if any.
    live_session_id: str | None = None
    # When the last session started (ms), for the dashboard; 0 if never.
    last_session_at: int = 0
    # Stored attributes that could not be read (an item written by hand or by a bug); they
    # hold defaults here. A damaged meeting is listed, flagged, and cannot be joined until
    # its host edits it (or deletes it).
    damaged: tuple[str, ...] = ()

    @property
    def live(self) -> bool:
        return self.live_session_id is not None

    @property
    def guests_may_start(self) -> bool:
        return self.allow_before_host and self.kind != "webinar"

    @property
    def damage(self) -> str | None:
        """What is wrong with the stored meeting (apart from its schedule), or None."""
        if not self.damaged:
            return None
        return f"the stored meeting's {', '.join(self.damaged)} cannot be read"

    def is_cohost(self, email: str) -> bool:
        """Whether the account with this email is one of the meeting's co-hosts."""
        return email.strip().lower() in self.cohosts

    def session_key(self, session_id: str) -> SessionKey:
        return SessionKey(self.meeting_id, session_id)
