"""The end of a session, and the host role changing hands.

"End for all" (and the last person leaving) ends the session only: its `META` gets
`ended_at`, its index row too, and the meeting stops pointing at it, in one transaction with
the request. The meeting, its link, passcode and schedule stay valid, and the next host's join
starts a new session.

A host who leaves hands the host role on, so a session never goes on without someone who can
run it: to the person they pick, else to the co-host present longest, else to whoever has been
there longest (in a webinar, a panelist: attendees never run a webinar).
"""

from __future__ import annotations

import logging

from contracts.signaling_events import EventName
from townhall.errors import NotFound
from townhall.model.breakout import media_room_id
from townhall.model.event import Audience
from townhall.model.participant import Participant
from townhall.model.session import Session
from townhall.signaling.context import ActionContext, Caller, everyone_admitted
from townhall.signaling.delivery import announce
from townhall.signaling.protocol import Request
from townhall.signaling.transaction import commit, next_seq, retrying
from townhall.store.writes import EndSession, ParticipantChange

logger = logging.getLogger(__name__)


def end_session(
    ctx: ActionContext, caller: Caller, request: Request | None, session: Session, *, by: str
) -> None:
    seq = next_seq(ctx, session.key)
    # Everyone connected hears it, waiting room included, and their connections are closed
    # after it; the caller's stays open for its reply (its page closes it).
    told = announce(
        EventName.MEETING_ENDED,
        {"by": by},
        Audience(connected=True),
        close=True,
        keep_open=(caller.connection_id,),
    )
    commit(ctx, caller, request, seq, [EndSession(session, ended_at=ctx.now_ms()), told])
    media = ctx.media()
    if media is not None:
        media.end_meeting(session.meeting_id)  # every media token of it stops working
        for room in ctx.breakouts.get(session.key).rooms:
            media.end_meeting(media_room_id(session.meeting_id, room.room_id))


def hand_over_host(
    ctx: ActionContext,
    caller: Caller,
    request: Request,
    session: Session,
    leaving: Participant,
    successor_id: str | None,
) -> bool:
    """Make the successor a host and the leaving host a co-host; False if nobody is left to
    take over (nothing was written, and the request id is not spent)."""

    def attempt() -> bool:
        people = ctx.participants.all(session.key)
        me = next((p for p in people if p.participant_id == leaving.participant_id), None)
        if me is None or me.role != "host":
            return False
        present = [
            p
            for p in people
            if p.status == "admitted" and p.connected and p.participant_id != me.participant_id
        ]
        successor = _successor(session, present, successor_id)
        if successor is None or successor.role == "host":
            return False
        seq = next_seq(ctx, session.key)
        changes = [
            ParticipantChange(successor, {"role": "host"}),
            ParticipantChange(me, {"role": "cohost"}),
        ]
        told = []
        for change in changes:
            after = change.before.changed(change.changes, seq)
            data = {"participant": after.public(), "by": me.participant_id, "changed": ["role"]}
            told.append(announce(EventName.PARTICIPANT_UPDATED, data, everyone_admitted))
        commit(ctx, caller, request, seq, [*changes, *told])
        return True

    return retrying(attempt)


def _successor(
    session: Session, present: list[Participant], successor_id: str | None
) -> Participant | None:
    if successor_id is not None:
        chosen = next((p for p in present if p.participant_id == successor_id), None)
        if chosen is None or (session.kind == "webinar" and chosen.role == "attendee"):
            raise NotFound("that participant cannot take over: pick someone present")
        return chosen
    by_arrival = sorted(present, key=lambda p: (p.place, p.participant_id))
    cohosts = [p for p in by_arrival if p.role == "cohost"]
    if cohosts:
        return cohosts[0]
    eligible = [p for p in by_arrival if session.kind != "webinar" or p.role != "attendee"]
    return eligible[0] if eligible else None
