"""Telling others, and what follows when a connection is gone.

An action tells others by adding `announce(...)` to its write: the event is kept in the
session's outbox in the same transaction as the change, and the outbox's consumer
(`townhall.outbox.fanout`) delivers it after the action has replied. Only a message for the one
connection a request concerns (`you.admitted`, `you.denied`) is posted here directly (`send`).

A post that answers 410 names a connection whose `$disconnect` never came (delivery of it is
best-effort): the consumer reports it (`connections_gone`), and its participant is marked
offline, which is itself an event.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from contracts.signaling_events import EventName
from townhall.errors import Conflict, Gone
from townhall.model.event import Audience
from townhall.model.participant import Participant, Recipient
from townhall.model.session import Session, SessionKey
from townhall.signaling import protocol
from townhall.signaling.context import ActionContext, moderators, who_sees
from townhall.signaling.transaction import commit_follow_up, next_seq, retrying
from townhall.store.writes import CloseAttendance, Operation, ParticipantChange, PublishEvent

logger = logging.getLogger(__name__)


def announce(
    name: EventName,
    data: dict[str, Any],
    audience: Audience,
    *,
    exclude: str | None = None,
    close: bool = False,
    keep_open: tuple[str, ...] = (),
    subject: str | None = None,
) -> PublishEvent:
    """The write operation that tells `audience` (less `exclude`) about the change; with
    `close`, their connections (but `keep_open`) are closed once it is delivered; with
    `subject` ("poll:<id>"),
    the consumer sends that item's state as it is at delivery instead of `data`."""
    if exclude is not None:
        audience = replace(audience, exclude=audience.exclude | {exclude})
    return PublishEvent(name.value, data, audience, close, keep_open, subject)


def send(
    ctx: ActionContext,
    session: Session,
    seq: int,
    connection_id: str,
    name: EventName,
    data: dict[str, Any],
) -> None:
    """Post one event to one connection, now (not through the outbox)."""
    ctx.notifier.post_many([(connection_id, protocol.event(session.meeting_id, seq, name, data))])


def close(ctx: ActionContext, connection_id: str | None) -> None:
    """Close a connection from the server's side and forget it."""
    if connection_id:
        ctx.notifier.disconnect(connection_id)
        ctx.connections.delete(connection_id)


def mark_offline(
    ctx: ActionContext,
    key: SessionKey,
    participant_id: str,
    connection_id: str,
    reason: str,
    *,
    request_id: str | None = None,
) -> None:
    """The participant's connection is gone: mark them offline, close their attendance
    interval, and tell the others. After a `leave` (reason "left") they have left; after a
    drop they keep their place for the reconnect window, and the others see them
    "reconnecting" (`reconnecting_until`) rather than gone. Nothing if a newer connection took
    over meanwhile or the session has ended, and nothing but a log line if the session stays
    too busy: this follows a connection that is already gone, so there is nobody to answer.
    `request_id` is the `leave` it serves, recorded with the change so a replay is refused."""

    def attempt() -> None:
        session = ctx.sessions.get(key)
        p = ctx.participants.get(key, participant_id)
        if session is None or session.ended_at or p is None:
            return
        if p.connection_id != connection_id:
            return  # a newer connection took over, or already offline
        seq = next_seq(ctx, key)
        left = reason == "left"
        changes: dict[str, Any] = {
            "connection_id": None,
            "screen": False,
            "left_at": int(ctx.clock()),
            "dropped_at": 0 if left else ctx.now_ms(),
            "session_at": 0,
        }
        after = p.changed(changes, seq)
        write: list[Operation] = [ParticipantChange(p, changes), *interval_end(ctx, p)]
        data: dict[str, Any]
        if p.status == "waiting":
            data = {"participant_id": participant_id, "outcome": "left"}
            write.append(announce(EventName.WAITING_LEFT, data, moderators))
        elif p.status == "admitted" and left:
            data = {
                "participant_id": participant_id,
                "reason": reason,
                "participant": after.public(),
            }
            write.append(announce(EventName.PARTICIPANT_LEFT, data, who_sees(session, p)))
        elif p.status == "admitted":
            data = {"participant": after.public(), "reason": reason, "changed": ["connected"]}
            write.append(announce(EventName.PARTICIPANT_UPDATED, data, who_sees(session, p)))
        record = (participant_id, request_id) if request_id is not None else None
        commit_follow_up(ctx, key, seq, write, record)

    try:
        retrying(attempt)
    except Gone:
        return  # the session ended meanwhile: nobody is left to tell
    except Conflict:
        logger.warning("mark_offline: the session stayed busy; %s keeps its state", participant_id)


def interval_end(ctx: ActionContext, p: Participant) -> list[CloseAttendance]:
    """What closes the participant's attendance interval, if one is open."""
    if not p.session_at:
        return []
    return [CloseAttendance(p.participant_id, p.session_at, ctx.now_ms())]


def connections_gone(
    ctx: ActionContext, key: SessionKey, gone: list[str], known: list[Recipient]
) -> None:
    """Connections that answered 410 to a delivery (`known` is the roster it used): their
    $disconnect never came (it is best-effort), so they are forgotten and their participants
    marked offline here."""
    by_connection = {p.connection_id: p for p in known if p.connection_id}
    for connection_id in gone[: len(known) + 1]:
        logger.info("connection %s is gone; cleaning up", connection_id)
        ctx.connections.delete(connection_id)
        p = by_connection.get(connection_id)
        if p is not None:
            mark_offline(ctx, key, p.participant_id, connection_id, "connection lost")
