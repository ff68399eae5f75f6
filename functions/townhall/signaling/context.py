"""What every action is given: who called (`Caller`), and the stores, the way out to clients,
media and time (`ActionContext`). Actions are plain functions of these two and the request,
so a reader sees everything an action touches in its arguments.

Every store is typed by its Protocol and handed in whole: the composition root
(`townhall.runtime`) builds the DynamoDB ones, and a test may pass any others."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from townhall.auth.claims import JoinClaims
from townhall.clock import now as clock_now
from townhall.errors import DomainError
from townhall.model.event import EVERYONE_ADMITTED, MODERATORS, Audience
from townhall.model.participant import Participant
from townhall.model.session import Session, SessionKey
from townhall.store.breakouts import BreakoutRecords
from townhall.store.chat import ChatRecords
from townhall.store.connections import ConnectionRecords
from townhall.store.participants import ParticipantRecords
from townhall.store.polls import PollRecords
from townhall.store.questions import QuestionRecords
from townhall.store.sessions import RunningSessionRecords
from townhall.store.whiteboard import WhiteboardRecords

if TYPE_CHECKING:
    from townhall.media.access import MediaAccess

# Who hears an event, resolved against the roster when the outbox delivers it.
everyone_admitted = EVERYONE_ADMITTED
moderators = MODERATORS


def in_room(me: Participant) -> Audience:
    """Everyone admitted in the same room as `me` (the main room, or one breakout room): where
    a public chat message, a reaction or a stroke stays."""
    return Audience(rooms=frozenset({me.room}))


def who_sees(session: Session, subject: Participant) -> Audience:
    """Who hears about a change to `subject`: everyone admitted, except that in a webinar
    attendees neither see nor are told about other attendees (moderators and panelists do,
    and an attendee always hears about themself)."""
    if session.kind != "webinar" or subject.role != "attendee":
        return everyone_admitted
    return Audience(
        roles=frozenset({"host", "cohost", "panelist"}),
        include=frozenset({subject.participant_id}),
    )


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

    @property
    def session(self) -> SessionKey:
        return self.claims.session


class DuplicateRequestError(DomainError):
    code = "duplicate_request"


class Notifier(Protocol):
    """The way out to clients (`townhall.notifier.ConnectionNotifier`, over @connections)."""

    def post_many(self, deliveries: Iterable[tuple[str, str]]) -> list[str]:
        """Deliver each (connection id, message); return the connection ids that are gone."""
        ...

    def disconnect(self, connection_id: str) -> None: ...


@dataclass
class ActionContext:
    sessions: RunningSessionRecords
    participants: ParticipantRecords
    chat: ChatRecords
    polls: PollRecords
    questions: QuestionRecords
    whiteboard: WhiteboardRecords
    connections: ConnectionRecords
    breakouts: BreakoutRecords
    notifier: Notifier
    # Built on first use: only the signaling function holds the signing key and the
    # MediaNodes grant, and $connect/$disconnect never need media.
    media_factory: Callable[[], MediaAccess] | None = None
    clock: Callable[[], float] = clock_now
    pause: Callable[[float], None] = time.sleep
    _media: MediaAccess | None = field(init=False, default=None)

    def media(self) -> MediaAccess | None:
        """The media control plane, or None in a deployment without media nodes."""
        if self._media is None and self.media_factory is not None:
            self._media = self.media_factory()
        return self._media

    def now_ms(self) -> int:
        return int(self.clock() * 1000)
