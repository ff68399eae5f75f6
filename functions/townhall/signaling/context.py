"""What every action module shares: the caller, event audiences, and the steps of an action
(`ActionSteps`), which the collaboration mixins (polls, Q&A, whiteboard) use through their
`self` so they stay out of the service module while following its one write path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from townhall.auth.claims import JoinClaims
from townhall.errors import DomainError
from townhall.signaling import permissions
from townhall.signaling.protocol import Request
from townhall.store.attendance import AttendanceStore
from townhall.store.meetings import Meeting, MeetingStore, Participant, Recipient
from townhall.store.polls import PollStore
from townhall.store.questions import QuestionStore
from townhall.store.whiteboard import WhiteboardStore

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


class ActionSteps(Protocol):
    """The SignalingService as the action mixins see it."""

    _meetings: MeetingStore
    _polls: PollStore
    _questions: QuestionStore
    _whiteboard: WhiteboardStore
    _attendance: AttendanceStore
    _clock: Callable[[], float]

    def _acting(self, caller: Caller, request: Request) -> tuple[Meeting, Participant]: ...

    def _next_seq(self, meeting_id: str) -> int: ...

    def _commit_refusing(
        self,
        caller: Caller,
        request: Request,
        seq: int,
        extra: list[dict[str, Any]],
        refusals: dict[str, DomainError],
    ) -> None: ...

    def _fan_out(
        self,
        meeting: Meeting,
        seq: int,
        name: str,
        data: dict[str, Any],
        audience: Audience,
        *,
        exclude: str | None = None,
        extra: list[str] | None = None,
    ) -> list[Recipient]: ...
