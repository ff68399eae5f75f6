"""The shared whiteboard: participants who may publish draw strokes in normalized coordinates
(0..1 on both axes, so every screen size shows the same drawing); moderators clear it. Late
joiners get the strokes since the last clear in their snapshot, newest first up to a byte
budget, and page further back with `wb_history`."""

from __future__ import annotations

import logging
import re
from typing import Any

from townhall.errors import Conflict, Forbidden, InvalidInput
from townhall.signaling import permissions, protocol
from townhall.signaling.context import ActionSteps, Caller, everyone_admitted
from townhall.signaling.protocol import Request
from townhall.store.limits import COLLAB_SK
from townhall.store.whiteboard import MAX_STROKES

logger = logging.getLogger(__name__)

MIN_POINTS, MAX_POINTS = 2, 1000
MIN_WIDTH, MAX_WIDTH = 1, 40
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
# A reply must fit in API Gateway's 128 KiB message: the snapshot keeps room for the roster,
# chat, polls and questions; a history page has the message to itself.
SNAPSHOT_BUDGET = 40 * 1024
HISTORY_BUDGET = 100 * 1024


def _points(data: dict[str, Any]) -> list[list[float]]:
    raw = protocol.require_list(data, "points", MIN_POINTS, MAX_POINTS)
    points = []
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
        points.append([round(float(point[0]), 4), round(float(point[1]), 4)])
    return points


class WhiteboardActions:
    def _do_wb_stroke(self: ActionSteps, caller: Caller, request: Request) -> dict[str, Any]:
        protocol.only_fields(request.data, "color", "width", "points")
        color = request.data.get("color")
        if not isinstance(color, str) or not _COLOR.fullmatch(color):
            raise InvalidInput("data.color must be a colour like #1a2b3c")
        width = protocol.require_number(request.data, "width", MIN_WIDTH, MAX_WIDTH)
        points = _points(request.data)
        meeting, me = self._acting(caller, request)
        if not permissions.may_publish(me.role, meeting.kind):
            raise Forbidden("webinar attendees are view-only and may not draw")
        seq = self._next_seq(caller.meeting_id)
        stroke = {
            "stroke_id": seq,
            "by": me.participant_id,
            "color": color.lower(),
            "width": width,
            "points": points,
        }
        self._commit_refusing(
            caller,
            request,
            seq,
            self._whiteboard.add(caller.meeting_id, stroke),
            {COLLAB_SK: Conflict(f"the whiteboard is full ({MAX_STROKES} strokes); clear it")},
        )
        self._fan_out(meeting, seq, "whiteboard.stroke", {"stroke": stroke}, everyone_admitted)
        return {"stroke_id": seq}

    def _do_wb_clear(self: ActionSteps, caller: Caller, request: Request) -> dict[str, Any]:
        protocol.only_fields(request.data)
        meeting, me = self._acting(caller, request)
        permissions.check_action(me.role, "wb_clear")
        seq = self._next_seq(caller.meeting_id)
        self._commit_refusing(
            caller, request, seq, [self._whiteboard.clear(caller.meeting_id, seq)], {}
        )
        self._fan_out(
            meeting, seq, "whiteboard.cleared", {"by": me.participant_id}, everyone_admitted
        )
        try:
            self._whiteboard.delete_before(caller.meeting_id, seq)
        except Exception:  # housekeeping only: the clear itself has landed
            logger.exception("whiteboard clean-up after a clear failed")
        return {}

    def _do_wb_history(self: ActionSteps, caller: Caller, request: Request) -> dict[str, Any]:
        """Strokes drawn before `before` (a stroke id), oldest first, and whether more remain.
        A read, like `ping`: it spends no event number and writes nothing."""
        protocol.only_fields(request.data, "before")
        before = request.data.get("before")
        if isinstance(before, bool) or not isinstance(before, int) or before < 1:
            raise InvalidInput("data.before must be a stroke id (a positive integer)")
        self._acting(caller, request)
        cleared = self._whiteboard.cleared_at(caller.meeting_id)
        strokes, more = self._whiteboard.strokes(
            caller.meeting_id, after=cleared, before=before, budget=HISTORY_BUDGET
        )
        return {"strokes": strokes, "more": more}

    def _whiteboard_snapshot(self: ActionSteps, meeting_id: str) -> dict[str, Any]:
        cleared = self._whiteboard.cleared_at(meeting_id)
        strokes, more = self._whiteboard.strokes(
            meeting_id, after=cleared, before=None, budget=SNAPSHOT_BUDGET
        )
        return {"whiteboard": strokes, "whiteboard_more": more}
