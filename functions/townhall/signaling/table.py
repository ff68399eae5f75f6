"""The table from action name to the function that runs it: every route of the WebSocket API
(`townhall.routes.ACTIONS`) has exactly one entry, checked by tests/unit/test_action_table.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from townhall.signaling.actions import (
    breakouts,
    chat,
    media,
    moderation,
    polls,
    presence,
    qa,
    whiteboard,
)
from townhall.signaling.context import ActionContext, Caller
from townhall.signaling.protocol import Request

Action = Callable[[ActionContext, Caller, Request], dict[str, Any]]

ACTIONS: Mapping[str, Action] = {
    # presence
    "join": presence.join,
    "leave": presence.leave,
    "ping": presence.ping,
    "mute": presence.mute,
    "camera": presence.camera,
    "screenshare": presence.screenshare,
    "hand": presence.hand,
    # chat
    "chat": chat.chat,
    "react": chat.react,
    # moderation
    "admit": moderation.admit,
    "deny": moderation.deny,
    "mute_all": moderation.mute_all,
    "remove": moderation.remove,
    "lock": moderation.lock,
    "end": moderation.end,
    "promote": moderation.promote,
    "demote": moderation.demote,
    "allow_talk": moderation.allow_talk,
    # media
    "media": media.media,
    "media_publish": media.media_publish,
    "media_subscribe": media.media_subscribe,
    "media_answer": media.media_answer,
    "media_stalled": media.media_stalled,
    # polls
    "poll_create": polls.poll_create,
    "poll_vote": polls.poll_vote,
    "poll_close": polls.poll_close,
    # Q&A
    "qa_ask": qa.qa_ask,
    "qa_upvote": qa.qa_upvote,
    "qa_answer": qa.qa_answer,
    "qa_dismiss": qa.qa_dismiss,
    # whiteboard
    "wb_stroke": whiteboard.wb_stroke,
    "wb_clear": whiteboard.wb_clear,
    "wb_history": whiteboard.wb_history,
    # breakout rooms
    "breakout_setup": breakouts.breakout_setup,
    "breakout_assign": breakouts.breakout_assign,
    "breakout_open": breakouts.breakout_open,
    "breakout_close": breakouts.breakout_close,
    "breakout_broadcast": breakouts.breakout_broadcast,
    "breakout_move": breakouts.breakout_move,
    "breakout_help": breakouts.breakout_help,
}
