"""Who may do what in a meeting.

Hosts run the meeting; co-hosts share the host's controls except ending the meeting and
changing roles; panelists and attendees act only on themselves. In a webinar, attendees are
view-only: they may chat, react and raise a hand, but not publish audio, video or a screen.
"""

from __future__ import annotations

from typing import Literal

from townhall.auth.claims import Role
from townhall.errors import Forbidden

MeetingKind = Literal["meeting", "webinar"]

# Actions that act on the meeting or on other people.
MODERATOR_ACTIONS = frozenset(
    {
        "admit",
        "deny",
        "mute_all",
        "remove",
        "lock",
        "poll_create",
        "poll_close",
        "qa_answer",
        "qa_dismiss",
        "wb_clear",
        "allow_talk",
        "breakout_setup",
        "breakout_assign",
        "breakout_open",
        "breakout_close",
        "breakout_broadcast",
    }
)
HOST_ONLY_ACTIONS = frozenset({"end", "promote", "demote"})
PUBLISHING_ACTIONS = frozenset({"mute", "camera", "screenshare"})

_RANK: dict[Role, int] = {"host": 3, "cohost": 2, "panelist": 1, "attendee": 0}


def is_moderator(role: Role) -> bool:
    return role in ("host", "cohost")


def check_action(role: Role, action: str) -> None:
    if action in HOST_ONLY_ACTIONS and role != "host":
        raise Forbidden(f"only the host may {action.replace('_', ' ')}")
    if action in MODERATOR_ACTIONS and not is_moderator(role):
        raise Forbidden(f"only a host or co-host may {action.replace('_', ' ')}")


def check_acts_on(actor: Role, target: Role, action: str) -> None:
    """A moderator may act on someone of lower rank only: a co-host cannot remove the host."""
    if not is_moderator(actor):
        raise Forbidden(f"only a host or co-host may {action.replace('_', ' ')} someone else")
    if _RANK[target] >= _RANK[actor]:
        raise Forbidden(f"a {actor} may not {action.replace('_', ' ')} a {target}")


def may_publish(role: Role, kind: MeetingKind) -> bool:
    return not (kind == "webinar" and role == "attendee")


def check_publish(role: Role, kind: MeetingKind, what: str) -> None:
    if not may_publish(role, kind):
        raise Forbidden(f"webinar attendees are view-only and may not turn on {what}")
