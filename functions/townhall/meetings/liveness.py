"""Whether a meeting's session is really running: the check every read that depends on it runs
(the join, the host's list and meeting, the public page, deleting).

A session whose participants all dropped without `leave` (tabs closed, laptops shut) was
never ended by anyone: nobody is connected, nobody reconnecting, and nothing happened for
the reconnect window. Such a session is **abandoned**; the first of those reads to see it
ends it (`SessionStore.end`, conditional on it still running, so two at once end it once)
and goes on as if no session ran.
"""

from __future__ import annotations

from dataclasses import replace

from townhall import clock
from townhall.model.meeting import Meeting
from townhall.model.participant import RECONNECT_WINDOW_SECONDS
from townhall.model.session import Session
from townhall.store.participants import ParticipantRecords
from townhall.store.sessions import SessionRecords


class Liveness:
    def __init__(self, sessions: SessionRecords, participants: ParticipantRecords) -> None:
        self._sessions = sessions
        self._participants = participants

    def running(self, meeting: Meeting) -> Session | None:
        """The session running now; one everybody left without a `leave` (so nobody ended
        it) is ended here, and there is none."""
        if meeting.live_session_id is None:
            return None
        session = self._sessions.get(meeting.session_key(meeting.live_session_id))
        if session is None or not session.running:
            return None
        if self.abandoned(session):
            self._sessions.end(session, clock.now_ms())
            return None
        return session

    def current(self, meeting: Meeting) -> Meeting:
        """The meeting as it is now: not live if the session it names has ended, or was
        abandoned (and is ended here). Costs nothing for a meeting that is not live."""
        if meeting.live_session_id is None or self.running(meeting) is not None:
            return meeting
        return replace(meeting, live_session_id=None)

    def abandoned(self, session: Session) -> bool:
        """Nobody connected, nobody reconnecting, and nothing happened for the reconnect
        window (a session just started, whose host has not connected yet, is not)."""
        now_ms = clock.now_ms()
        quiet_since = now_ms - RECONNECT_WINDOW_SECONDS * 1000
        if session.started_at > quiet_since:
            return False
        for p in self._participants.all(session.key):
            last_seen = max(p.created_at * 1000, p.left_at * 1000, p.dropped_at)
            if p.connected or last_seen > quiet_since:
                return False
        return True
