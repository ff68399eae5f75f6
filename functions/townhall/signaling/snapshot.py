"""The snapshot: everything a participant needs on entering, in the reply to `join` (and in
`you.admitted`). It must fit one API Gateway message (128 KiB)."""

from __future__ import annotations

import logging
from typing import Any

from townhall.signaling import permissions, protocol
from townhall.signaling.actions.polls import polls_snapshot
from townhall.signaling.actions.qa import questions_snapshot
from townhall.signaling.actions.whiteboard import whiteboard_snapshot
from townhall.signaling.checks import running_meeting
from townhall.signaling.context import ActionContext
from townhall.store.meetings import Meeting, Participant

logger = logging.getLogger(__name__)

CHAT_HISTORY_ON_JOIN = 50
# A reply is one API Gateway message (at most 128 KiB); keep room for the reply envelope.
MAX_SNAPSHOT_BYTES = 120 * 1024


def snapshot(ctx: ActionContext, meeting_id: str, me: Participant) -> dict[str, Any]:
    meeting = running_meeting(ctx, meeting_id)
    participants = ctx.meetings.participants(meeting_id)
    roster = sorted(
        (p for p in participants if p.status == "admitted" and p.connected),
        key=lambda p: (p.place, p.participant_id),
    )
    chat = [
        m.public()
        for m in ctx.chat.recent(meeting_id, CHAT_HISTORY_ON_JOIN * 2)
        if not m.private or me.participant_id in (m.sender_id, m.recipient_id)
    ][-CHAT_HISTORY_ON_JOIN:]
    result: dict[str, Any] = {
        "status": "admitted",
        "seq": meeting.seq,
        "meeting": meeting_public(meeting),
        "you": me.public(),
        "participants": [p.public() for p in roster],
        "chat": chat,
        "polls": polls_snapshot(ctx, meeting_id, me.participant_id),
        "questions": questions_snapshot(ctx, meeting_id),
        **whiteboard_snapshot(ctx, meeting_id),
    }
    if permissions.is_moderator(me.role):
        result["waiting"] = [
            p.public() for p in participants if p.status == "waiting" and p.connected
        ]
    fit(result)
    return result


def meeting_public(meeting: Meeting) -> dict[str, Any]:
    return {
        "meeting_id": meeting.meeting_id,
        "title": meeting.title,
        "kind": meeting.kind,
        "locked": meeting.locked,
        "waiting_room": meeting.waiting_room,
        "video_slots": meeting.video_slots,
        "host_id": meeting.host_id,
    }


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
