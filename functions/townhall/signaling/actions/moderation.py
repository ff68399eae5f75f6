"""What hosts and co-hosts do to the session and to other people: the waiting room, mute all,
remove, lock, end, the co-host role, and who may talk in a webinar."""

from __future__ import annotations

import logging
from typing import Any

from contracts.signaling_events import EventName
from townhall.auth.claims import Role
from townhall.errors import Conflict, Gone
from townhall.model.breakout import media_room_id
from townhall.signaling import permissions, protocol
from townhall.signaling.checks import acting, other
from townhall.signaling.context import (
    ActionContext,
    Caller,
    everyone_admitted,
    moderators,
    who_sees,
)
from townhall.signaling.delivery import announce, close, interval_end, send
from townhall.signaling.lifecycle import end_session
from townhall.signaling.protocol import Request
from townhall.signaling.snapshot import snapshot
from townhall.signaling.transaction import commit, next_seq, retrying
from townhall.store.writes import (
    LockSession,
    OpenAttendance,
    Operation,
    ParticipantChange,
    StaleWrite,
)

logger = logging.getLogger(__name__)

# A transaction holds 100 items: mute_all's first one has the request record, the meeting
# check and its event besides its participants; the rest go in further transactions of this
# many.
FIRST_BATCH, NEXT_BATCHES = 97, 99


def admit(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    return _decide_waiting(ctx, caller, request, admit=True)


def deny(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    return _decide_waiting(ctx, caller, request, admit=False)


def _decide_waiting(
    ctx: ActionContext, caller: Caller, request: Request, *, admit: bool
) -> dict[str, Any]:
    protocol.only_fields(request.data, "participant_id")
    target_id = protocol.require_participant(request.data)

    def attempt() -> dict[str, Any]:
        session, me = acting(ctx, caller, request)
        permissions.check_action(me.role, request.action)
        target = other(ctx, caller, target_id, ("waiting",), "not in the waiting room")
        seq = next_seq(ctx, caller.session)
        changes: dict[str, Any] = {"status": "admitted" if admit else "denied"}
        attending: list[Operation] = []
        if admit:
            changes["place"] = seq
            if target.connection_id:
                changes["session_at"] = ctx.now_ms()
                attending.append(OpenAttendance(target_id, changes["session_at"]))
        else:
            changes["connection_id"] = None
        after = target.changed(changes, seq)
        outcome = "admitted" if admit else "denied"
        told = [
            announce(
                EventName.WAITING_LEFT,
                {"participant_id": target_id, "outcome": outcome, "by": me.participant_id},
                moderators,
            )
        ]
        if admit:
            told.append(
                announce(
                    EventName.PARTICIPANT_JOINED,
                    {"participant": after.public()},
                    who_sees(session, after),
                    exclude=target_id,
                )
            )
        write = [ParticipantChange(target, changes), *attending, *told]
        commit(ctx, caller, request, seq, write)
        # The one whose fate this is hears it directly: a request of theirs waits on it.
        if admit:
            if target.connection_id:
                entering = snapshot(ctx, session, after)
                send(ctx, session, seq, target.connection_id, EventName.YOU_ADMITTED, entering)
        elif target.connection_id:
            by = {"by": me.participant_id}
            send(ctx, session, seq, target.connection_id, EventName.YOU_DENIED, by)
            close(ctx, target.connection_id)
        return {"participant": after.public()}

    return retrying(attempt)


def mute_all(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    protocol.only_fields(request.data)

    def attempt() -> dict[str, Any]:
        _, me = acting(ctx, caller, request)
        permissions.check_action(me.role, "mute_all")
        targets = [
            p
            for p in ctx.participants.all(caller.session)
            if p.status == "admitted" and not p.muted and not permissions.is_moderator(p.role)
        ]
        seq = next_seq(ctx, caller.session)
        changes = [ParticipantChange(p, {"muted": True}) for p in targets]
        first, rest = changes[:FIRST_BATCH], changes[FIRST_BATCH:]
        muted = [c.before.changed(c.changes, seq).public() for c in changes]
        told = announce(
            EventName.MEETING_MUTED_ALL,
            {"by": me.participant_id, "participants": muted},
            everyone_admitted,
        )
        commit(ctx, caller, request, seq, [*first, told])
        # Beyond one transaction, each further batch is atomic per participant only: a batch
        # that cannot land (someone in it changed, the session ended, it stayed busy) is
        # left, and the action stands.
        for start in range(0, len(rest), NEXT_BATCHES):
            try:
                commit(ctx, caller, None, seq, rest[start : start + NEXT_BATCHES])
            except (StaleWrite, Gone, Conflict):
                logger.warning("mute_all: a batch changed concurrently; its members keep state")
        return {"muted": [p["participant_id"] for p in muted]}

    return retrying(attempt)


def remove(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    """Remove someone from the session. They cannot come back into it on any path (the link,
    a new tab, /rejoin, an old token, another browser of the same account), unless the
    moderator chose `may_return`: then they may ask again through the waiting room."""
    protocol.only_fields(request.data, "participant_id", "may_return")
    target_id = protocol.require_participant(request.data)
    may_return = protocol.optional_bool(request.data, "may_return", False)

    def attempt() -> dict[str, Any]:
        session, me = acting(ctx, caller, request)
        permissions.check_action(me.role, "remove")
        target = other(ctx, caller, target_id, ("admitted", "waiting", "joining"))
        permissions.check_acts_on(me.role, target.role, "remove")
        seq = next_seq(ctx, caller.session)
        changes = {
            "status": "removed",
            "may_return": may_return,
            "connection_id": None,
            "screen": False,
            "left_at": int(ctx.clock()),
            "dropped_at": 0,
            "session_at": 0,
        }
        data = {"participant_id": target_id, "by": me.participant_id}
        told = announce(EventName.PARTICIPANT_REMOVED, data, who_sees(session, target))
        write: list[Operation] = [
            ParticipantChange(target, changes),
            *interval_end(ctx, target),
            told,
        ]
        commit(ctx, caller, request, seq, write)
        if target.connection_id:
            # They hear it directly, before their connection is closed.
            send(ctx, session, seq, target.connection_id, EventName.PARTICIPANT_REMOVED, data)
        close(ctx, target.connection_id)
        media = ctx.media()
        if media is not None:
            media.revoke_participant(caller.meeting_id, target_id)  # their media stops too
            if target.room:
                media.revoke_participant(media_room_id(caller.meeting_id, target.room), target_id)
        return {}

    return retrying(attempt)


def lock(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    protocol.only_fields(request.data, "locked")
    locked = protocol.require_bool(request.data, "locked")
    _, me = acting(ctx, caller, request)
    permissions.check_action(me.role, "lock")
    seq = next_seq(ctx, caller.session)
    data = {"locked": locked, "by": me.participant_id}
    told = announce(EventName.MEETING_UPDATED, data, everyone_admitted)
    commit(ctx, caller, request, seq, [LockSession(locked), told])
    return {"locked": locked}


def end(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    """End the session for everyone ("End for all"); the meeting can be started again."""
    protocol.only_fields(request.data)
    session, me = acting(ctx, caller, request)
    permissions.check_action(me.role, "end")
    end_session(ctx, caller, request, session, by=me.participant_id)
    return {}


def promote(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    return _change_role(ctx, caller, request, promote=True)


def demote(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    return _change_role(ctx, caller, request, promote=False)


def _change_role(
    ctx: ActionContext, caller: Caller, request: Request, *, promote: bool
) -> dict[str, Any]:
    protocol.only_fields(request.data, "participant_id")
    target_id = protocol.require_participant(request.data)

    def attempt() -> dict[str, Any]:
        session, me = acting(ctx, caller, request)
        permissions.check_action(me.role, request.action)
        target = other(ctx, caller, target_id, ("admitted",))
        if promote and target.role not in ("attendee", "panelist"):
            raise Conflict(f"a {target.role} cannot be promoted to co-host")
        if not promote and target.role != "cohost":
            raise Conflict("only a co-host can be demoted")
        new_role: Role = (
            "cohost" if promote else ("panelist" if session.kind == "webinar" else "attendee")
        )
        seq = next_seq(ctx, caller.session)
        changes = {"role": new_role}
        after = target.changed(changes, seq)
        data = {"participant": after.public(), "by": me.participant_id, "changed": ["role"]}
        told = announce(EventName.PARTICIPANT_UPDATED, data, everyone_admitted)
        commit(ctx, caller, request, seq, [ParticipantChange(target, changes), told])
        return {"participant": after.public()}

    return retrying(attempt)


def allow_talk(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    """In a webinar, let an attendee talk (they become a panelist: seen by all, may publish)
    or take it back (an attendee again: their microphone, camera and screen go off)."""
    protocol.only_fields(request.data, "participant_id", "allowed")
    target_id = protocol.require_participant(request.data)
    allowed = protocol.require_bool(request.data, "allowed")

    def attempt() -> dict[str, Any]:
        session, me = acting(ctx, caller, request)
        permissions.check_action(me.role, "allow_talk")
        if session.kind != "webinar":
            raise Conflict("everyone may talk in a meeting; this is for webinars")
        target = other(ctx, caller, target_id, ("admitted",))
        if target.role not in ("attendee", "panelist"):
            raise Conflict(f"a {target.role} already presents")
        new_role: Role = "panelist" if allowed else "attendee"
        if target.role == new_role:
            commit(ctx, caller, request, 0)  # nothing to change, but the id is spent
            return {"participant": target.public()}
        seq = next_seq(ctx, caller.session)
        changes: dict[str, Any] = {"role": new_role}
        if not allowed:
            changes.update(muted=True, camera=False, screen=False)
        after = target.changed(changes, seq)
        data = {"participant": after.public(), "by": me.participant_id, "changed": ["role"]}
        # Everyone hears of it: attendees learn a new panelist, or drop one who left the stage.
        told = announce(EventName.PARTICIPANT_UPDATED, data, everyone_admitted)
        commit(ctx, caller, request, seq, [ParticipantChange(target, changes), told])
        media = ctx.media()
        if media is not None and not allowed:
            # What they published stops at once; their page renegotiates to watch only.
            media.revoke_participant(caller.meeting_id, target_id)
        return {"participant": after.public()}

    return retrying(attempt)
