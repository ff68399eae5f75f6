"""Being in the meeting: joining on a connection, leaving, keeping the connection alive, and
one's own microphone, camera, screen share and hand (a moderator may turn those off for
someone else, never on)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contracts.signaling_events import EventName
from townhall.auth.claims import Role
from townhall.errors import Conflict, Forbidden
from townhall.model.breakout import media_room_id
from townhall.model.participant import Participant
from townhall.model.session import Session
from townhall.signaling import permissions, protocol
from townhall.signaling.checks import acting, may_enter_locked, other, running
from townhall.signaling.context import (
    ActionContext,
    Caller,
    DuplicateRequestError,
    everyone_admitted,
    moderators,
    who_sees,
)
from townhall.signaling.delivery import announce, close, mark_offline
from townhall.signaling.lifecycle import end_session, hand_over_host
from townhall.signaling.protocol import Request
from townhall.signaling.snapshot import snapshot
from townhall.signaling.transaction import commit, next_seq, retrying
from townhall.store.writes import OpenAttendance, Operation, ParticipantChange

# The flags `_set_flag` changes: how to read each, and its public name in
# `participant.updated`'s `changed`.
_FLAGS: dict[str, tuple[Callable[[Participant], Any], str]] = {
    "muted": (lambda p: p.muted, "muted"),
    "camera": (lambda p: p.camera, "camera"),
    "screen": (lambda p: p.screen, "screen"),
    "hand_raised_at": (lambda p: p.hand_raised_at, "hand"),
}


def join(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    protocol.only_fields(request.data)

    def attempt() -> dict[str, Any]:
        found, me, seen = ctx.sessions.load(
            caller.session, caller.participant_id, request.request_id
        )
        session = running(found)
        if seen:
            raise DuplicateRequestError(f"request id {request.request_id} was already used")
        if me is None:
            me = _recreated(ctx, caller)
        if me.status == "denied" or (me.status == "removed" and not me.may_return):
            raise Forbidden(f"you were {me.status} from this meeting")
        role: Role = "host" if me.user_id and me.user_id == session.host_id else me.role
        was_admitted = me.status == "admitted"
        if session.locked and not may_enter_locked(me, role):
            raise Forbidden("the meeting is locked")
        # Someone removed with "may come back" asks again through the waiting room.
        returning = me.status == "removed"
        admitted = not returning and (
            was_admitted or permissions.is_moderator(role) or not session.waiting_room
        )
        seq = next_seq(ctx, caller.session)
        changes: dict[str, Any] = {
            "status": "admitted" if admitted else "waiting",
            "connection_id": caller.connection_id,
            "role": role,
            "joined_at": me.joined_at or int(ctx.clock()),
            "dropped_at": 0,
            "may_return": False,
        }
        if admitted and not me.place:
            changes["place"] = seq
        if me.room and not (
            was_admitted and ctx.breakouts.get(caller.session).is_open(ctx.now_ms())
        ):
            # Back in the main room: their breakout room closed, or they had left the meeting.
            changes["room"] = ""
        if not permissions.may_publish(role, session.kind):
            changes.update(muted=True, camera=False, screen=False)
        attending: list[Operation] = []
        if admitted and not (was_admitted and me.connected and me.session_at):
            # A new attendance interval; a reconnect that replaces a live one continues it.
            changes["session_at"] = ctx.now_ms()
            attending.append(OpenAttendance(me.participant_id, changes["session_at"]))
        after = me.changed(changes, seq)
        if admitted:
            # Back within the reconnect window (or on a replacing socket): the same tile.
            still_there = was_admitted and (me.connected or me.reconnecting_until() > 0)
            name = EventName.PARTICIPANT_UPDATED if still_there else EventName.PARTICIPANT_JOINED
            data: dict[str, Any] = {"participant": after.public()}
            if still_there:
                data["changed"] = ["connected"]
            told = announce(name, data, who_sees(session, after), exclude=caller.participant_id)
        else:
            told = announce(EventName.WAITING_JOINED, {"participant": after.public()}, moderators)
        commit(ctx, caller, request, seq, [ParticipantChange(me, changes), *attending, told])
        if me.connection_id and me.connection_id != caller.connection_id:
            # One participant, one connection: the older socket would see every event twice.
            close(ctx, me.connection_id)
        if admitted:
            return snapshot(ctx, session, after)
        return {"status": "waiting", "meeting": session.public(), "you": after.public()}

    return retrying(attempt)


def _recreated(ctx: ActionContext, caller: Caller) -> Participant:
    """The HTTP join writes the participant; a valid token without one means the participant
    was created by an older deployment. Recreate it from the claims (then read it again)."""
    me = Participant(
        meeting_id=caller.meeting_id,
        session_id=caller.claims.session_id,
        participant_id=caller.participant_id,
        name=caller.claims.name,
        role=caller.claims.role,
        status="joining",
        user_id=caller.claims.user_id,
        created_at=int(ctx.clock()),
    )
    ctx.participants.create(me)
    return ctx.participants.get(caller.session, caller.participant_id) or me


def leave(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    """Leave the session. A host who leaves hands the host role on: to `successor` if given,
    else to the co-host present longest; the last one to leave ends the session."""
    protocol.only_fields(request.data, "successor")
    successor_id = protocol.optional_participant(request.data, "successor")
    session, me, seen = ctx.sessions.load(caller.session, caller.participant_id, request.request_id)
    if seen:
        raise DuplicateRequestError(f"request id {request.request_id} was already used")
    handed_over = False
    if (
        session is not None
        and session.running
        and me is not None
        and me.connection_id == caller.connection_id
        and me.status == "admitted"
    ):
        if me.role == "host":
            handed_over = hand_over_host(ctx, caller, request, session, me, successor_id)
        elif successor_id is not None:
            raise Forbidden("only a host hands on the host role")
    # The request id is spent by the hand-over's write, or else by this one.
    mark_offline(
        ctx,
        caller.session,
        caller.participant_id,
        caller.connection_id,
        "left",
        request_id=None if handed_over else request.request_id,
    )
    media = ctx.media()
    if media is not None:
        room = me.room if me is not None else ""
        media.leave(media_room_id(caller.meeting_id, room), caller.participant_id)
    if session is not None and session.running and not _anyone_left(ctx, session):
        end_session(ctx, caller, None, session, by=caller.participant_id)
    return {}


def _anyone_left(ctx: ActionContext, session: Session) -> bool:
    now_ms = ctx.now_ms()
    return any(
        p.connected or p.reconnecting_until() > now_ms
        for p in ctx.participants.all(session.key)
        if p.status in ("admitted", "waiting")
    )


def ping(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    protocol.only_fields(request.data)
    return {"pong": ctx.now_ms()}


def mute(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    protocol.only_fields(request.data, "muted", "participant_id")
    muted = protocol.require_bool(request.data, "muted")
    return _set_flag(
        ctx,
        caller,
        request,
        "muted",
        muted,
        publishing=not muted,
        what="the microphone",
        others_only_to=True,
    )


def camera(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    protocol.only_fields(request.data, "on", "participant_id")
    on = protocol.require_bool(request.data, "on")
    return _set_flag(
        ctx, caller, request, "camera", on, publishing=on, what="the camera", others_only_to=False
    )


def screenshare(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    protocol.only_fields(request.data, "on", "participant_id")
    on = protocol.require_bool(request.data, "on")
    return _set_flag(
        ctx,
        caller,
        request,
        "screen",
        on,
        publishing=on,
        what="screen sharing",
        others_only_to=False,
    )


def hand(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    protocol.only_fields(request.data, "raised", "participant_id")
    raised = protocol.require_bool(request.data, "raised")
    value = ctx.now_ms() if raised else 0
    return _set_flag(
        ctx,
        caller,
        request,
        "hand_raised_at",
        value,
        publishing=False,
        what="a hand",
        others_only_to=0,
    )


def _set_flag(
    ctx: ActionContext,
    caller: Caller,
    request: Request,
    field: str,
    value: Any,
    *,
    publishing: bool,
    what: str,
    others_only_to: Any,
) -> dict[str, Any]:
    """Change one flag of the caller, or of someone else when a moderator sets it to
    `others_only_to` (mute, camera off, hand down, stop sharing: never the reverse)."""
    target_id = protocol.optional_participant(request.data)

    def attempt() -> dict[str, Any]:
        session, me = acting(ctx, caller, request)
        if target_id is None or target_id == me.participant_id:
            target = me
            if publishing:
                permissions.check_publish(me.role, session.kind, what)
        else:
            found = other(ctx, caller, target_id, ("admitted",))
            permissions.check_acts_on(me.role, found.role, f"change {what} of")
            if value != others_only_to:
                raise Forbidden(f"you may only turn off {what} for someone else")
            target = found
        changes: dict[str, Any] = {field: value}
        others: list[ParticipantChange] = []
        if field == "screen" and value:
            sharing = [
                p
                for p in ctx.participants.all(caller.session)
                if p.screen and p.participant_id != target.participant_id
            ]
            if sharing and not permissions.is_moderator(me.role):
                raise Conflict(f"{sharing[0].name} is already sharing their screen")
            others = [ParticipantChange(p, {"screen": False}) for p in sharing]
        current, public_name = _FLAGS[field]
        if current(target) == value and not others:
            commit(ctx, caller, request, 0)  # nothing to change, but the id is spent
            return {"participant": target.public()}
        seq = next_seq(ctx, caller.session)
        told = []
        for stopped in others:
            data = {
                "participant": stopped.before.changed(stopped.changes, seq).public(),
                "by": me.participant_id,
                "changed": ["screen"],
            }
            told.append(announce(EventName.PARTICIPANT_UPDATED, data, everyone_admitted))
        after = target.changed(changes, seq)
        data = {"participant": after.public(), "by": me.participant_id, "changed": [public_name]}
        told.append(announce(EventName.PARTICIPANT_UPDATED, data, who_sees(session, after)))
        commit(ctx, caller, request, seq, [ParticipantChange(target, changes), *others, *told])
        return {"participant": after.public()}

    return retrying(attempt)
