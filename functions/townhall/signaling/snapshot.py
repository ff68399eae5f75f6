"""The snapshot: everything a participant needs on entering, in the reply to `join` (and in
`you.admitted`). It must fit one API Gateway message (128 KiB)."""

from __future__ import annotations

import logging
from typing import Any

from townhall.model.participant import Participant
from townhall.model.session import Session
from townhall.signaling import permissions, protocol
from townhall.signaling.actions.breakouts import breakouts_snapshot
from townhall.signaling.actions.polls import polls_snapshot
from townhall.signaling.actions.qa import questions_snapshot
from townhall.signaling.actions.whiteboard import whiteboard_snapshot
from townhall.signaling.checks import running_session
from townhall.signaling.context import ActionContext

logger = logging.getLogger(__name__)

CHAT_HISTORY_ON_JOIN = 50
# A reply is one API Gateway message (at most 128 KiB); keep room for the reply envelope.
MAX_SNAPSHOT_BYTES = 120 * 1024


def snapshot(ctx: ActionContext, session: Session, me: Participant) -> dict[str, Any]:
    session = running_session(ctx, session.key)  # its latest seq and settings
    participants = ctx.participants.all(session.key)
    now_ms = ctx.now_ms()
    present = [
        p
        for p in participants
        if p.status == "admitted" and (p.connected or p.reconnecting_until() > now_ms)
    ]
    # In a webinar an attendee sees the people on stage and themself, not the audience.
    hides_audience = session.kind == "webinar" and me.role == "attendee"
    roster = sorted(
        (
            p
            for p in present
            if not hides_audience or p.role != "attendee" or p.participant_id == me.participant_id
        ),
        key=lambda p: (p.place, p.participant_id),
    )
    chat = [
        m.public()
        for m in ctx.chat.recent(session.key, CHAT_HISTORY_ON_JOIN * 2, room=me.room)
        if not m.private or me.participant_id in (m.sender_id, m.recipient_id)
    ][-CHAT_HISTORY_ON_JOIN:]
    result: dict[str, Any] = {
        "status": "admitted",
        "seq": session.seq,
        "meeting": session.public(),
        "you": me.public(),
        "participants": [p.public() for p in roster],
        "attendees": sum(1 for p in present if p.role == "attendee"),
        "chat": chat,
        "polls": polls_snapshot(ctx, session.key, me.participant_id),
        "questions": questions_snapshot(ctx, session.key),
        **whiteboard_snapshot(ctx, session.key, me.room),
    }
    breakouts = breakouts_snapshot(ctx, session)
    if breakouts is not None:
        result["breakouts"] = breakouts
    if permissions.is_moderator(me.role):
        result["waiting"] = [
            p.public() for p in participants if p.status == "waiting" and p.connected
        ]
    fit(result)
    return result


def fit(snapshot: dict[str, Any], limit: int = MAX_SNAPSHOT_BYTES) -> None:
    """Keep the snapshot within one API Gateway message (128 KiB, less the envelope). Each part
    has its own budget, but UTF-8 and a full meeting can add up: shed what a client can page
    back (oldest strokes) or live without (least-voted questions, oldest chat) until it fits."""
    size = _size(snapshot)
    if size <= limit:
        return
    strokes, questions, chat = snapshot["whiteboard"], snapshot["questions"], snapshot["chat"]
    for items, take in ((strokes, 0), (questions, -1), (chat, 0)):
        while size > limit and items:
            size -= _size(items.pop(take)) + 1
            if items is strokes:
                snapshot["whiteboard_more"] = True
    logger.warning("snapshot trimmed to fit one message", extra={"bytes": size})


def _size(value: dict[str, Any]) -> int:
    return len(protocol.dumps(value).encode())
