"""The catalogue of signaling events: every event a client can receive, named once.

An event reaches clients as `{"type": "event", "event": <name>, "seq", "meeting_id", "data"}`
(docs/signaling.md has each one's data). Later consumers of the same events (webhooks, the
broadcast's audience state, recordings) read these names too.
"""

from __future__ import annotations

from enum import StrEnum


class EventName(StrEnum):
    PARTICIPANT_JOINED = "participant.joined"
    PARTICIPANT_UPDATED = "participant.updated"
    PARTICIPANT_LEFT = "participant.left"
    PARTICIPANT_REMOVED = "participant.removed"
    WAITING_JOINED = "waiting.joined"
    WAITING_LEFT = "waiting.left"
    YOU_ADMITTED = "you.admitted"
    YOU_DENIED = "you.denied"
    MEETING_UPDATED = "meeting.updated"
    MEETING_MUTED_ALL = "meeting.muted_all"
    MEETING_ENDED = "meeting.ended"
    CHAT_MESSAGE = "chat.message"
    REACTION = "reaction"
    POLL_CREATED = "poll.created"
    POLL_UPDATED = "poll.updated"
    POLL_CLOSED = "poll.closed"
    QA_ASKED = "qa.asked"
    QA_UPDATED = "qa.updated"
    WHITEBOARD_STROKE = "whiteboard.stroke"
    WHITEBOARD_CLEARED = "whiteboard.cleared"
    BREAKOUTS_CHANGED = "breakouts.changed"
    BREAKOUTS_BROADCAST = "breakouts.broadcast"
    BREAKOUTS_HELP = "breakouts.help"
    MEDIA_MOVED = "media.moved"
    # Reaches no client (its audience is empty): recorded for the outbox's other consumers
    # (webhooks) when a session starts, at seq 0.
    SESSION_STARTED = "session.started"
