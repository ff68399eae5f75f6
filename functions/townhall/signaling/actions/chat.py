"""Chat (to everyone, or privately to one participant) and reactions."""

from __future__ import annotations

from typing import Any

from contracts.signaling_events import EventName
from townhall.errors import Forbidden, InvalidInput
from townhall.model.chat import ChatMessage
from townhall.model.event import Audience
from townhall.signaling import protocol
from townhall.signaling.checks import acting, other
from townhall.signaling.context import ActionContext, Caller, in_room
from townhall.signaling.delivery import announce
from townhall.signaling.protocol import Request
from townhall.signaling.transaction import commit, next_seq
from townhall.store.writes import AddChatMessage

MAX_CHAT_CHARS = 4000
REACTIONS = frozenset({"👍", "👏", "❤️", "😂", "😮", "🎉", "🙌", "🤔"})


def chat(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    protocol.only_fields(request.data, "text", "to")
    text = protocol.require_text(request.data, "text", MAX_CHAT_CHARS)
    to = protocol.optional_participant(request.data, "to")
    session, me = acting(ctx, caller, request)
    target = None
    if to is not None:
        if to == me.participant_id:
            raise InvalidInput("a private message needs another participant")
        target = other(ctx, caller, to, ("admitted",))
        if session.kind == "webinar" and me.role == "attendee" and target.role == "attendee":
            # Attendees do not see each other; they may write to the people on stage.
            raise Forbidden("in a webinar, attendees may message only hosts and panelists")
    seq = next_seq(ctx, caller.session)
    message = ChatMessage(
        message_id=seq,
        sender_id=me.participant_id,
        sender_name=me.name,
        recipient_id=target.participant_id if target else None,
        recipient_name=target.name if target else None,
        text=text,
        ts=ctx.now_ms(),
        room="" if target else me.room,
    )
    data = {"message": message.public()}
    audience = in_room(me)
    if target is not None:
        audience = Audience(only=frozenset({me.participant_id, target.participant_id}))
    told = announce(EventName.CHAT_MESSAGE, data, audience)
    commit(ctx, caller, request, seq, [AddChatMessage(message), told])
    return {"message_id": seq}


def react(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    protocol.only_fields(request.data, "emoji")
    emoji = protocol.require_text(request.data, "emoji", 8)
    if emoji not in REACTIONS:
        raise InvalidInput(f"emoji must be one of {' '.join(sorted(REACTIONS))}")
    _, me = acting(ctx, caller, request)
    seq = next_seq(ctx, caller.session)
    data = {"participant_id": me.participant_id, "name": me.name, "emoji": emoji}
    commit(ctx, caller, request, seq, [announce(EventName.REACTION, data, in_room(me))])
    return {}
