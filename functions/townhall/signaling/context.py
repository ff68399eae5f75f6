"""What every action is given: who called (`Caller`), and the stores, the way out to clients,
media and time (`ActionContext`). Actions are plain functions of these two and the request,
so a reader sees everything an action touches in its arguments."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from townhall.auth.claims import JoinClaims
from townhall.errors import DomainError
from townhall.notifier import ConnectionNotifier
from townhall.signaling import permissions
from townhall.store.chat import ChatStore
from townhall.store.connections import ConnectionStore
from townhall.store.meetings import MeetingStore, Recipient
from townhall.store.polls import PollStore
from townhall.store.questions import QuestionStore
from townhall.store.whiteboard import WhiteboardStore

if TYPE_CHECKING:
    from townhall.media.access import MediaAccess

Audience = Callable[[Recipient], bool]


def everyone_admitted(p: Recipient) -> bool:
    return p.status == "admitted"


def moderators(p: Recipient) -> bool:
    return p.status == "admitted" and permissions.is_moderator(p.role)


@dataclass(frozen=True)
class Caller:
    """Who sent a message: verified claims plus the connection it came on."""

    claims: JoinClaims
    connection_id: str

    @property
    def meeting_id(self) -> str:
        return self.claims.meeting_id

    @property
    def participant_id(self) -> str:
        return self.claims.participant_id


class DuplicateRequestError(DomainError):
    code = "duplicate_request"


@dataclass
class ActionContext:
    meetings: MeetingStore
    connections: ConnectionStore
    notifier: ConnectionNotifier
    # Built on first use: only the signaling function holds the signing key and the
    # MediaNodes grant, and $connect/$disconnect never need media.
    media_factory: Callable[[], MediaAccess] | None = None
    clock: Callable[[], float] = time.time
    pause: Callable[[float], None] = time.sleep
    # Collaboration items live in the meetings table, each type under its own sort keys.
    chat: ChatStore = field(init=False)
    polls: PollStore = field(init=False)
    questions: QuestionStore = field(init=False)
    whiteboard: WhiteboardStore = field(init=False)
    _media: MediaAccess | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        table = self.meetings.table
        self.chat = ChatStore(table)
        self.polls = PollStore(table)
        self.questions = QuestionStore(table)
        self.whiteboard = WhiteboardStore(table)

    def media(self) -> MediaAccess | None:
        """The media control plane, or None in a deployment without media nodes."""
        if self._media is None and self.media_factory is not None:
            self._media = self.media_factory()
        return self._media

    def now_ms(self) -> int:
        return int(self.clock() * 1000)
