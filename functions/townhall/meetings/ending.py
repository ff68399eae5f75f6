"""Ending a running session from outside the meeting (the partner API), as the host's "End
for all" does from inside it (`townhall.signaling.lifecycle.end_session`): the session's end
and `meeting.ended` to every connection (whose sockets then close) in one write through the
outbox. Media tokens are not revoked at the node from here (the HTTP API has no node access):
the pages leave on `meeting.ended`, and a media token lives 120 s at most.
"""

from __future__ import annotations

from contracts.signaling_events import EventName
from townhall import clock
from townhall.errors import Conflict
from townhall.model.event import Audience
from townhall.model.session import Session
from townhall.store.sessions import RunningSessionRecords
from townhall.store.writes import (
    EndSession,
    PublishEvent,
    SessionEnded,
    StaleWrite,
    TransactionConflict,
)

# Who `meeting.ended` says ended it: not a participant, the API.
ENDED_BY_API = "api"


def end_running(sessions: RunningSessionRecords, session: Session) -> None:
    """End `session`; Conflict if it has ended already (by anyone, meanwhile too)."""
    if not session.running:
        raise Conflict("this session has ended already")
    try:
        seq = sessions.next_seq(session.key)
    except SessionEnded as exc:
        raise Conflict("this session has ended already") from exc
    told = PublishEvent(
        EventName.MEETING_ENDED.value, {"by": ENDED_BY_API}, Audience(connected=True), close=True
    )
    try:
        sessions.commit(session.key, seq, [EndSession(session, clock.now_ms()), told])
    except (StaleWrite, TransactionConflict) as exc:
        raise Conflict("the session is ending or changed meanwhile; fetch it and retry") from exc
