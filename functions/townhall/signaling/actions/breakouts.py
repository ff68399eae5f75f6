"""Breakout rooms: a moderator sets them up, opens them with a countdown, broadcasts to them,
visits them and closes them; a participant moves into their room when it opens, may ask for
help there, and moves back when the rooms close (`townhall.model.breakout`).

Only the moves write a participant. Opening and closing write the `Breakouts` record and tell
everyone when; each page then moves its own participant at the end of the countdown (with
`breakout_move`), so a session of any size opens its rooms in one small write. Moving between
rooms keeps the connection, the role and the devices: no passcode and no device check again.
"""

from __future__ import annotations

import random
from typing import Any

from contracts.signaling_events import EventName
from townhall.errors import Conflict, Forbidden, InvalidInput, NotFound
from townhall.model.breakout import (
    MAIN_ROOM,
    MAX_BROADCAST_CHARS,
    MAX_CLOSE_COUNTDOWN_S,
    MAX_OPEN_COUNTDOWN_S,
    MAX_ROOM_NAME,
    MAX_ROOMS,
    ROOM_ID,
    Assignment,
    BreakoutRoom,
    Breakouts,
    media_room_id,
)
from townhall.model.participant import Participant
from townhall.model.session import Session
from townhall.signaling import permissions, protocol
from townhall.signaling.actions.whiteboard import whiteboard_snapshot
from townhall.signaling.checks import acting, other
from townhall.signaling.context import (
    ActionContext,
    Caller,
    everyone_admitted,
    moderators,
    who_sees,
)
from townhall.signaling.delivery import announce
from townhall.signaling.protocol import Request
from townhall.signaling.transaction import commit, next_seq, retrying
from townhall.store.writes import EnterRoom, Operation, ParticipantChange, SetBreakouts

ASSIGNMENTS: tuple[Assignment, ...] = ("manual", "random", "choose")
# Chat messages a page gets on entering a room (as on joining).
CHAT_ON_ENTERING = 50
# Bounds the assignments a setup may name: more than any meeting holds.
MAX_ASSIGNMENTS = 2000


def breakout_setup(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    """Set up the rooms (replacing an earlier setup, while the rooms are not open): their
    names, and who goes where: by hand (`assignments`: participant id -> room number from 1),
    at random (everyone admitted but the moderators, spread evenly), or by choice."""
    protocol.only_fields(request.data, "rooms", "assignment", "assignments")
    names = _room_names(request.data)
    assignment = request.data.get("assignment", "manual")
    if assignment not in ASSIGNMENTS:
        raise InvalidInput(f"data.assignment must be one of {', '.join(ASSIGNMENTS)}")
    by_hand = _numbered_assignments(request.data, len(names))

    def attempt() -> dict[str, Any]:
        session, me = _moderating(ctx, caller, request)
        current = ctx.breakouts.get(caller.session)
        now = ctx.now_ms()
        if current.state(now) in ("open", "closing"):
            raise Conflict("close the breakout rooms before setting them up again")
        generation = current.generation + 1
        rooms = tuple(
            BreakoutRoom(room_id=f"b{generation}r{n}", name=name)
            for n, name in enumerate(names, start=1)
        )
        present = [p for p in ctx.participants.all(caller.session) if p.status == "admitted"]
        known = {p.participant_id for p in present}
        unknown = sorted(set(by_hand) - known)
        if unknown:
            raise NotFound(f"participant {unknown[0]} is not in the meeting")
        assignments = {pid: rooms[n - 1].room_id for pid, n in by_hand.items()}
        if assignment == "random":
            assignments = _spread(present, rooms)
        seq = next_seq(ctx, caller.session)
        after = Breakouts(
            generation=generation,
            rooms=rooms,
            assignments=assignments,
            assignment=assignment,
            rev=seq,
        )
        commit(ctx, caller, request, seq, _replacing(current, after, me, now))
        _release_media(ctx, session, current)
        return {"breakouts": after.public(now)}

    return retrying(attempt)


def breakout_assign(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    """Assign someone to a room ("" for the main room). While the rooms are open this moves
    them there at once too."""
    protocol.only_fields(request.data, "participant_id", "room_id")
    target_id = protocol.require_participant(request.data)
    room_id = _room_id(request.data)

    def attempt() -> dict[str, Any]:
        session, me = _moderating(ctx, caller, request)
        current = ctx.breakouts.get(caller.session)
        now = ctx.now_ms()
        if not current.rooms:
            raise Conflict("set up the breakout rooms first")
        _existing(current, room_id)
        target = other(ctx, caller, target_id, ("admitted",))
        moving = current.is_open(now) and target.room != room_id
        if moving and target.participant_id != me.participant_id:
            permissions.check_acts_on(me.role, target.role, "move")
        assignments = dict(current.assignments)
        if room_id:
            assignments[target_id] = room_id
        else:
            assignments.pop(target_id, None)
        seq = next_seq(ctx, caller.session)
        after = current.changed(seq, assignments=assignments)
        write = _replacing(current, after, me, now)
        moved = target
        if moving:
            moved, moving_write = _move(ctx, session, target, room_id, seq, by=me.participant_id)
            write.extend(moving_write)
        commit(ctx, caller, request, seq, write)
        return {"breakouts": after.public(now), "participant": moved.public()}

    return retrying(attempt)


def breakout_open(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    """Open the rooms after `countdown` seconds (0 to 60): each page moves its participant to
    their room when it ends (or lets them pick, with assignment "choose")."""
    protocol.only_fields(request.data, "countdown")
    countdown = _countdown(request.data, MAX_OPEN_COUNTDOWN_S)

    def attempt() -> dict[str, Any]:
        _, me = _moderating(ctx, caller, request)
        current = ctx.breakouts.get(caller.session)
        now = ctx.now_ms()
        state = current.state(now)
        if state == "none":
            raise Conflict("set up the breakout rooms first")
        if state != "ready":
            raise Conflict("the breakout rooms are already open")
        seq = next_seq(ctx, caller.session)
        after = current.changed(seq, opens_at=now + countdown * 1000, closes_at=0)
        commit(ctx, caller, request, seq, _replacing(current, after, me, now))
        return {"breakouts": after.public(now)}

    return retrying(attempt)


def breakout_close(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    """Close the rooms after `countdown` seconds (0 to 120): each page brings its participant
    back to the main room when it ends. A close asked again may shorten or lengthen it."""
    protocol.only_fields(request.data, "countdown")
    countdown = _countdown(request.data, MAX_CLOSE_COUNTDOWN_S)

    def attempt() -> dict[str, Any]:
        _, me = _moderating(ctx, caller, request)
        current = ctx.breakouts.get(caller.session)
        now = ctx.now_ms()
        if current.state(now) not in ("open", "closing"):
            raise Conflict("the breakout rooms are not open")
        seq = next_seq(ctx, caller.session)
        # A close of 0 s is now: `state` is "ready" again from this moment.
        after = current.changed(seq, closes_at=now + countdown * 1000)
        commit(ctx, caller, request, seq, _replacing(current, after, me, now))
        return {"breakouts": after.public(now)}

    return retrying(attempt)


def breakout_broadcast(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    """A message from a moderator to every room (and the main room)."""
    protocol.only_fields(request.data, "text")
    text = protocol.require_text(request.data, "text", MAX_BROADCAST_CHARS)
    _, me = _moderating(ctx, caller, request)
    if not ctx.breakouts.get(caller.session).is_open(ctx.now_ms()):
        raise Conflict("the breakout rooms are not open")
    seq = next_seq(ctx, caller.session)
    data = {"text": text, "by": me.participant_id, "by_name": me.name, "at": ctx.now_ms()}
    commit(
        ctx,
        caller,
        request,
        seq,
        [announce(EventName.BREAKOUTS_BROADCAST, data, everyone_admitted)],
    )
    return {}


def breakout_move(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    """Move yourself: into your room once the rooms are open (any room when they let people
    pick; a moderator may visit any), or back to the main room ("") at any time. The reply
    holds what the page needs in the room it enters: its recent chat and its whiteboard."""
    protocol.only_fields(request.data, "room_id")
    room_id = _room_id(request.data)

    def attempt() -> dict[str, Any]:
        session, me = acting(ctx, caller, request)
        _meeting_only(session)
        current = ctx.breakouts.get(caller.session)
        if room_id:
            _existing(current, room_id)
            if not current.is_open(ctx.now_ms()):
                raise Conflict("the breakout rooms are not open")
            if (
                not permissions.is_moderator(me.role)
                and current.assignment != "choose"
                and current.assignments.get(me.participant_id) != room_id
            ):
                raise Forbidden("you may only go to the room you were assigned to")
        if me.room == room_id:
            commit(ctx, caller, request, 0)  # already there; the id is spent
            return _entering(ctx, caller, me)
        seq = next_seq(ctx, caller.session)
        after, write = _move(ctx, session, me, room_id, seq, by=me.participant_id)
        commit(ctx, caller, request, seq, write)
        return _entering(ctx, caller, after)

    return retrying(attempt)


def breakout_help(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    """Ask the moderators for help in your breakout room."""
    protocol.only_fields(request.data)
    session, me = acting(ctx, caller, request)
    _meeting_only(session)
    if not me.room:
        raise Conflict("you are in the main room; ask there")
    current = ctx.breakouts.get(caller.session)
    seq = next_seq(ctx, caller.session)
    data = {
        "participant_id": me.participant_id,
        "name": me.name,
        "room_id": me.room,
        "room_name": current.name_of(me.room),
    }
    commit(ctx, caller, request, seq, [announce(EventName.BREAKOUTS_HELP, data, moderators)])
    return {}


def breakouts_snapshot(ctx: ActionContext, session: Session) -> dict[str, Any] | None:
    """The rooms as the join snapshot carries them (None in a webinar, which has none)."""
    if session.kind != "meeting":
        return None
    return ctx.breakouts.get(session.key).public(ctx.now_ms())


# -- helpers -------------------------------------------------------------------------------------


def _moderating(
    ctx: ActionContext, caller: Caller, request: Request
) -> tuple[Session, Participant]:
    session, me = acting(ctx, caller, request)
    _meeting_only(session)
    permissions.check_action(me.role, request.action)
    return session, me


def _meeting_only(session: Session) -> None:
    if session.kind != "meeting":
        raise Conflict("breakout rooms are for meetings, not webinars")


def _replacing(current: Breakouts, after: Breakouts, me: Participant, now: int) -> list[Operation]:
    """What a change to the rooms writes: the new record, in place of the one read, and the
    event that tells everyone admitted."""
    data = {"breakouts": after.public(now), "by": me.participant_id}
    return [
        SetBreakouts(current.rev, after),
        announce(EventName.BREAKOUTS_CHANGED, data, everyone_admitted),
    ]


def _move(
    ctx: ActionContext,
    session: Session,
    before: Participant,
    room_id: str,
    seq: int,
    *,
    by: str,
) -> tuple[Participant, list[Operation]]:
    """The participant in `room_id` (their screen share stopped: the new room starts without
    it), and what moving them writes: their room, the summary's entry, and the event."""
    changes = {"room": room_id, "screen": False}
    after = before.changed(changes, seq)
    data = {"participant": after.public(), "by": by, "changed": ["room"]}
    return after, [
        ParticipantChange(before, changes),
        EnterRoom(before.participant_id, room_id, ctx.now_ms(), seq),
        announce(EventName.PARTICIPANT_UPDATED, data, who_sees(session, after)),
    ]


def _entering(ctx: ActionContext, caller: Caller, me: Participant) -> dict[str, Any]:
    chat = [
        m.public()
        for m in ctx.chat.recent(caller.session, CHAT_ON_ENTERING * 2, room=me.room)
        if not m.private or me.participant_id in (m.sender_id, m.recipient_id)
    ][-CHAT_ON_ENTERING:]
    return {
        "room_id": me.room,
        "participant": me.public(),
        "chat": chat,
        **whiteboard_snapshot(ctx, caller.session, me.room),
    }


def _release_media(ctx: ActionContext, session: Session, earlier: Breakouts) -> None:
    """The media rooms of an earlier setup are done with: free their placements."""
    media = ctx.media()
    if media is None:
        return
    for room in earlier.rooms:
        media.end_meeting(media_room_id(session.meeting_id, room.room_id))


def _spread(present: list[Participant], rooms: tuple[BreakoutRoom, ...]) -> dict[str, str]:
    """Everyone but the moderators, shuffled and dealt to the rooms in turn."""
    people = [p.participant_id for p in present if not permissions.is_moderator(p.role)]
    random.shuffle(people)
    return {pid: rooms[i % len(rooms)].room_id for i, pid in enumerate(people)}


def _existing(breakouts: Breakouts, room_id: str) -> None:
    if room_id and breakouts.room(room_id) is None:
        raise NotFound("no such breakout room")


def _room_id(data: dict[str, Any]) -> str:
    value = data.get("room_id")
    if value == MAIN_ROOM:
        return MAIN_ROOM
    if not isinstance(value, str) or not ROOM_ID.fullmatch(value):
        raise InvalidInput('data.room_id must be a breakout room id, or "" for the main room')
    return value


def _room_names(data: dict[str, Any]) -> list[str]:
    raw = protocol.require_list(data, "rooms", 1, MAX_ROOMS)
    names: list[str] = []
    for value in raw:
        if not isinstance(value, str):
            raise InvalidInput("data.rooms must be a list of room names")
        name = " ".join(value.split())
        if not 1 <= len(name) <= MAX_ROOM_NAME or not name.isprintable():
            raise InvalidInput(f"a room name must be 1 to {MAX_ROOM_NAME} printable characters")
        names.append(name)
    if len(set(names)) != len(names):
        raise InvalidInput("room names must differ")
    return names


def _numbered_assignments(data: dict[str, Any], rooms: int) -> dict[str, int]:
    raw = data.get("assignments", {})
    if not isinstance(raw, dict) or len(raw) > MAX_ASSIGNMENTS:
        raise InvalidInput(
            f"data.assignments must map at most {MAX_ASSIGNMENTS} participant ids to rooms"
        )
    result: dict[str, int] = {}
    for pid, number in raw.items():
        if not protocol.is_participant_id(pid):
            raise InvalidInput("data.assignments: each key must be a participant id")
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= rooms:
            raise InvalidInput(f"data.assignments: a room number is 1 to {rooms}")
        result[pid] = number
    return result


def _countdown(data: dict[str, Any], most: int) -> int:
    value = data.get("countdown", 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= most:
        raise InvalidInput(f"data.countdown must be a whole number of seconds from 0 to {most}")
    return value
