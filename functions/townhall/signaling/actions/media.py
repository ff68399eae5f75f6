"""Media through signaling: the meeting's node and a token for it, and the SDP relayed to the
node's control API (docs/media-control.md). A participant in a breakout room gets the media of
that room, which a node hosts as a room of its own (`model.breakout.media_room_id`).

The effect of these actions is on the node, not in the table, so each records its request id
only after the node has answered: a request the node refused is safe to retry with the same
id. `acting` refuses an id already recorded; two copies racing both reach the node (which
treats a repeat as a renegotiation) and the second is then refused as a replay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from contracts.signaling_events import EventName
from townhall.errors import Gone
from townhall.model.breakout import media_room_id
from townhall.model.participant import Participant
from townhall.model.session import Session
from townhall.signaling import permissions, protocol
from townhall.signaling.checks import acting
from townhall.signaling.context import ActionContext, Caller, in_room
from townhall.signaling.delivery import announce
from townhall.signaling.protocol import Request
from townhall.signaling.transaction import commit, next_seq

if TYPE_CHECKING:
    from townhall.media.access import MediaAccess, NodeAnswer


def media(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    """The media node hosting the meeting and a token for it."""
    protocol.only_fields(request.data)
    access, session, me = _media_caller(ctx, caller, request)
    grant = access.grant(
        media_room_id(session.meeting_id, me.room),
        me.participant_id,
        may_publish=permissions.may_publish(me.role, session.kind),
        video_slots=session.video_slots,
    )
    commit(ctx, caller, request, 0)  # spends the request id: a replay is refused
    return grant


def media_publish(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    """Relay the caller's publish offer to their meeting's node; reply with its answer."""
    protocol.only_fields(request.data, "sdp")
    offer = protocol.require_sdp(request.data)
    access, session, me = _media_caller(ctx, caller, request)
    permissions.check_publish(me.role, session.kind, "audio or video")
    answer = access.publish(
        media_room_id(session.meeting_id, me.room),
        me.participant_id,
        offer,
        video_slots=session.video_slots,
    )
    _spend(ctx, caller, request, me, answer)
    return {"sdp": str(answer.body.get("sdp", "")), "node_id": answer.node_id}


def media_subscribe(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    """The node's offer for the caller's subscribe connection (answer with media_answer)."""
    protocol.only_fields(request.data)
    access, session, me = _media_caller(ctx, caller, request)
    offer = access.subscribe(
        media_room_id(session.meeting_id, me.room),
        me.participant_id,
        may_publish=permissions.may_publish(me.role, session.kind),
        video_slots=session.video_slots,
    )
    _spend(ctx, caller, request, me, offer)
    return {"sdp": str(offer.body.get("sdp", "")), "node_id": offer.node_id}


def media_answer(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    protocol.only_fields(request.data, "sdp")
    answer = protocol.require_sdp(request.data)
    access, session, me = _media_caller(ctx, caller, request)
    answered = access.answer(
        media_room_id(session.meeting_id, me.room),
        me.participant_id,
        answer,
        may_publish=permissions.may_publish(me.role, session.kind),
        video_slots=session.video_slots,
    )
    _spend(ctx, caller, request, me, answered)
    return {}


def media_stalled(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    """The caller's page stopped receiving media from `node_id` (the node its last
    media_publish or media_subscribe reply named) while it was flowing. A lost node is taken
    out of placement and the room told to move (`media.moved`, as when a media request finds
    the node lost); when the room is elsewhere already, only the caller is told (a wrong id
    moves nobody else); a node that answers, or is only slow, keeps the room and the page
    waits (docs/media-control.md, "Losing a node")."""
    protocol.only_fields(request.data, "node_id")
    node_id = protocol.require_item_id(request.data, "node_id")
    access, session, me = _media_caller(ctx, caller, request)
    found = access.check_node(media_room_id(session.meeting_id, me.room), node_id)
    if found == "lost":
        _tell_room_to_move(ctx, caller, request, me, node_id)
    else:
        commit(ctx, caller, request, 0)
    return {"moved": found != "fine"}


def _spend(
    ctx: ActionContext, caller: Caller, request: Request, me: Participant, answer: NodeAnswer
) -> None:
    """Spend the request id now that the node answered; and when this request found the
    room's node lost and placed it again, tell everyone in the room, so their pages move to
    the new node at once instead of each finding out by itself."""
    if answer.moved_from is None:
        commit(ctx, caller, request, 0)
        return
    _tell_room_to_move(ctx, caller, request, me, answer.moved_from)


def _tell_room_to_move(
    ctx: ActionContext, caller: Caller, request: Request, me: Participant, lost_node: str
) -> None:
    seq = next_seq(ctx, caller.session)
    data = {"room_id": me.room, "lost_node": lost_node, "by": me.participant_id}
    told = announce(EventName.MEDIA_MOVED, data, in_room(me))
    commit(ctx, caller, request, seq, [told])


def _media_caller(
    ctx: ActionContext, caller: Caller, request: Request
) -> tuple[MediaAccess, Session, Participant]:
    access = ctx.media()
    if access is None:
        raise Gone("media is not available in this deployment")
    session, me = acting(ctx, caller, request)
    return access, session, me
