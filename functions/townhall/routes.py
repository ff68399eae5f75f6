"""The WebSocket API's routes: one source for the CDK WebSocket stack and the local twin.

API Gateway selects a route on `$request.body.action`. Every action below is its own route
(so each can be throttled and metered on its own) and all of them, plus `$default`, go to the
one signaling function. A body that is not JSON, or names no known action, lands on `$default`,
whose handler answers with a clear error.
"""

from __future__ import annotations

ROUTE_SELECTION_EXPRESSION = "$request.body.action"

# The stage is named after the viewer path CloudFront maps to the WebSocket API (`/ws`),
# because behind CloudFront the viewer path must equal the stage.
STAGE = "ws"

# The join token travels as the second WebSocket subprotocol, after SUBPROTOCOL: browsers
# cannot set headers on a WebSocket, and a query string lands in access logs (CloudFront's
# standard logs record it, `cs-uri-query`). `$connect` selects SUBPROTOCOL in its answer.
SUBPROTOCOL = "townhall"
TOKEN_HEADER = "Sec-WebSocket-Protocol"
# The authorizer's identity source: without this header API Gateway answers 401 itself.
IDENTITY_SOURCE = f"route.request.header.{TOKEN_HEADER}"
# The meeting the client means to enter; the authorizer refuses a token for any other meeting.
MEETING_QUERY_PARAMETER = "meeting"


def token_from_subprotocols(header: str | None) -> str | None:
    """The join token from a `Sec-WebSocket-Protocol` header: "townhall, <token>"."""
    if not header:
        return None
    offered = [p.strip() for p in header.split(",")]
    if len(offered) != 2 or offered[0] != SUBPROTOCOL or not offered[1]:
        return None
    return offered[1]


ACTIONS: tuple[str, ...] = (
    "join",
    "leave",
    "ping",
    "mute",
    "camera",
    "hand",
    "screenshare",
    "chat",
    "react",
    "admit",
    "deny",
    "mute_all",
    "remove",
    "lock",
    "end",
    "promote",
    "demote",
    "allow_talk",
    "media",
    "media_publish",
    "media_subscribe",
    "media_answer",
    "media_stalled",
    "poll_create",
    "poll_vote",
    "poll_close",
    "qa_ask",
    "qa_upvote",
    "qa_answer",
    "qa_dismiss",
    "wb_stroke",
    "wb_clear",
    "wb_history",
    "breakout_setup",
    "breakout_assign",
    "breakout_open",
    "breakout_close",
    "breakout_broadcast",
    "breakout_move",
    "breakout_help",
)

# Routes whose integration response is returned to the caller (a two-way route): the handler's
# returned `body` is the reply to the request, so no extra @connections call is spent on it.
TWO_WAY_ROUTES: tuple[str, ...] = (*ACTIONS, "$default")

# Largest message API Gateway accepts from a client; a larger one closes the connection (1009).
MAX_MESSAGE_BYTES = 128 * 1024
