"""Delivering events to connections, and what follows when a connection is gone.

A fan-out posts one event to every connection of its audience through the management API.
A post that answers 410 names a connection whose `$disconnect` never came (delivery of it is
best-effort): its participant is marked offline on the spot, which is itself an event.
"""

from __future__ import annotations

import logging
from typing import Any

from contracts.signaling_events import EventName
from townhall.signaling import protocol
from townhall.signaling.context import ActionContext, Audience, everyone_admitted, moderators
from townhall.signaling.transaction import WRITE_ATTEMPTS
from townhall.store import attendance
from townhall.store.meetings import Meeting, Participant, ParticipantChange, Recipient, StaleWrite

logger = logging.getLogger(__name__)


def fan_out(
    ctx: ActionContext,
    meeting: Meeting,
    seq: int,
    name: EventName,
    data: dict[str, Any],
    audience: Audience,
    *,
    exclude: str | None = None,
    extra: list[str] | None = None,
) -> list[Recipient]:
    """Post the event to its audience; the roster it read, for callers that act on it too."""
    message = protocol.event(meeting.meeting_id, seq, name, data)
    participants = ctx.meetings.recipients(meeting.meeting_id)
    targets = {
        p.connection_id
        for p in participants
        if p.connection_id and audience(p) and p.participant_id != exclude
    }
    targets.update(extra or [])
    gone = ctx.notifier.post_many((c, message) for c in sorted(targets))
    logger.debug("fan-out", extra={"event": name, "targets": len(targets), "gone": len(gone)})
    if gone:
        _clean_up_gone(ctx, meeting.meeting_id, gone, participants)
    return participants


def send(
    ctx: ActionContext,
    meeting: Meeting,
    seq: int,
    connection_id: str,
    name: EventName,
    data: dict[str, Any],
) -> None:
    """Post one event to one connection."""
    ctx.notifier.post_many([(connection_id, protocol.event(meeting.meeting_id, seq, name, data))])


def close(ctx: ActionContext, connection_id: str | None) -> None:
    """Close a connection from the server's side and forget it."""
    if connection_id:
        ctx.notifier.disconnect(connection_id)
        ctx.connections.delete(connection_id)


def mark_offline(
    ctx: ActionContext, meeting_id: str, participant_id: str, connection_id: str, reason: str
) -> None:
    """The participant's connection is gone (closed, left, or found gone): mark them offline,
    close their attendance session, and tell the others. Nothing if a newer connection took
    over meanwhile or the meeting has ended."""
    for _ in range(WRITE_ATTEMPTS):
        meeting = ctx.meetings.get_meeting(meeting_id)
        p = ctx.meetings.get_participant(meeting_id, participant_id)
        if meeting is None or meeting.ended_at or p is None:
            return
        if p.connection_id != connection_id:
            return  # a newer connection took over, or already offline
        try:
            seq = ctx.meetings.next_seq(meeting_id)
        except StaleWrite:
            return
        changes = {"connection_id": None, "screen": False, "left_at": int(ctx.clock())}
        try:
            ctx.meetings.commit(
                meeting_id,
                seq,
                participants=[ParticipantChange(p, {**changes, "session_at": None})],
                puts=session_end(ctx, p),
            )
        except StaleWrite:
            continue
        after = p.changed(changes, seq)
        if p.status == "waiting":
            fan_out(
                ctx,
                meeting,
                seq,
                EventName.WAITING_LEFT,
                {"participant_id": participant_id, "outcome": "left"},
                moderators,
            )
        elif p.status == "admitted":
            data = {
                "participant_id": participant_id,
                "reason": reason,
                "participant": after.public(),
            }
            fan_out(ctx, meeting, seq, EventName.PARTICIPANT_LEFT, data, everyone_admitted)
        return


def session_end(ctx: ActionContext, p: Participant) -> list[dict[str, Any]]:
    """The item that closes the participant's attendance session, if one is open."""
    if not p.session_at:
        return []
    return [attendance.session_item(p.meeting_id, p.participant_id, p.session_at, ctx.now_ms())]


def _clean_up_gone(
    ctx: ActionContext, meeting_id: str, gone: list[str], known: list[Recipient]
) -> None:
    """Connections that answered 410: their $disconnect never came (it is best-effort)."""
    by_connection = {p.connection_id: p for p in known if p.connection_id}
    for connection_id in gone[: len(known) + 1]:
        logger.info("connection %s is gone; cleaning up", connection_id)
        ctx.connections.delete(connection_id)
        p = by_connection.get(connection_id)
        if p is not None:
            mark_offline(ctx, meeting_id, p.participant_id, connection_id, "connection lost")
