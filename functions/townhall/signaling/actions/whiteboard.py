"""The shared whiteboard: participants who may publish draw strokes in normalized coordinates
(0..1 on both axes, so every screen size shows the same drawing); moderators clear it. Late
joiners get the strokes since the last clear in their snapshot, newest first up to a byte
budget, and page further back with `wb_history`."""

from __future__ import annotations

import logging
import re
from typing import Any

from contracts.signaling_events import EventName
from townhall.errors import Forbidden, InvalidInput
from townhall.model.collaboration import Stroke
from townhall.model.session import SessionKey
from townhall.signaling import permissions, protocol
from townhall.signaling.checks import acting
from townhall.signaling.context import ActionContext, Caller, in_room
from townhall.signaling.delivery import announce
from townhall.signaling.protocol import Request
from townhall.signaling.transaction import commit, next_seq
from townhall.store.writes import AddStroke, ClearWhiteboard

logger = logging.getLogger(__name__)

MIN_POINTS, MAX_POINTS = 2, 1000
MIN_WIDTH, MAX_WIDTH = 1, 40
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
# A reply must fit in API Gateway's 128 KiB message: the snapshot keeps room for the roster,
# chat, polls and questions; a history page has the message to itself.
SNAPSHOT_BUDGET = 40 * 1024
HISTORY_BUDGET = 100 * 1024


def wb_stroke(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    protocol.only_fields(request.data, "color", "width", "points")
    color = request.data.get("color")
    if not isinstance(color, str) or not _COLOR.fullmatch(color):
        raise InvalidInput("data.color must be a colour like #1a2b3c")
    width = protocol.require_number(request.data, "width", MIN_WIDTH, MAX_WIDTH)
    points = _points(request.data)
    session, me = acting(ctx, caller, request)
    if not permissions.may_publish(me.role, session.kind):
        raise Forbidden("webinar attendees are view-only and may not draw")
    seq = next_seq(ctx, caller.session)
    stroke = Stroke(
        stroke_id=seq,
        by=me.participant_id,
        color=color.lower(),
        width=width,
        points=points,
        room=me.room,
    )
    told = announce(EventName.WHITEBOARD_STROKE, {"stroke": stroke.public()}, in_room(me))
    commit(ctx, caller, request, seq, [AddStroke(stroke), told])
    return {"stroke_id": seq}


def wb_clear(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    protocol.only_fields(request.data)
    _, me = acting(ctx, caller, request)
    permissions.check_action(me.role, "wb_clear")
    seq = next_seq(ctx, caller.session)
    data = {"by": me.participant_id, "room_id": me.room}
    told = announce(EventName.WHITEBOARD_CLEARED, data, in_room(me))
    commit(ctx, caller, request, seq, [ClearWhiteboard(seq, me.room), told])
    try:
        ctx.whiteboard.delete_before(caller.session, seq, me.room)
    except Exception:  # housekeeping only: the clear itself has landed
        logger.exception("whiteboard clean-up after a clear failed")
    return {}


def wb_history(ctx: ActionContext, caller: Caller, request: Request) -> dict[str, Any]:
    """Strokes drawn before `before` (a stroke id), oldest first, and whether more remain.
    A read, like `ping`: it spends no event number and writes nothing."""
    protocol.only_fields(request.data, "before")
    before = request.data.get("before")
    if isinstance(before, bool) or not isinstance(before, int) or before < 1:
        raise InvalidInput("data.before must be a stroke id (a positive integer)")
    _, me = acting(ctx, caller, request)
    cleared = ctx.whiteboard.cleared_at(caller.session, me.room)
    strokes, more = ctx.whiteboard.strokes(
        caller.session, after=cleared, before=before, budget=HISTORY_BUDGET, room=me.room
    )
    return {"strokes": [s.public() for s in strokes], "more": more}


def whiteboard_snapshot(ctx: ActionContext, session: SessionKey, room: str = "") -> dict[str, Any]:
    """The newest strokes of the room's board since its last clear, within the snapshot's
    budget."""
    cleared = ctx.whiteboard.cleared_at(session, room)
    strokes, more = ctx.whiteboard.strokes(
        session, after=cleared, before=None, budget=SNAPSHOT_BUDGET, room=room
    )
    return {"whiteboard": [s.public() for s in strokes], "whiteboard_more": more}


def _points(data: dict[str, Any]) -> tuple[tuple[float, float], ...]:
    raw = protocol.require_list(data, "points", MIN_POINTS, MAX_POINTS)
    points: list[tuple[float, float]] = []
    for point in raw:
        if (
            not isinstance(point, list)
            or len(point) != 2
            or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1
                for v in point
            )
        ):
            raise InvalidInput("data.points must be [x, y] pairs of numbers from 0 to 1")
        # Four decimals is a tenth of a pixel on a 4K canvas and keeps strokes small.
        points.append((round(float(point[0]), 4), round(float(point[1]), 4)))
    return tuple(points)
