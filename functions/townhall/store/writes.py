"""The typed write: what an action changes in its session, said in the domain's terms.

An action describes its whole effect as a sequence of the operations below and commits it
through `RunningSessionRecords.commit` (signaling calls it from `transaction.commit`): all of
it lands, or none of it. The store decides how each operation is kept (`SessionStore` turns
them into the items and conditions of one DynamoDB transaction) and answers a failed
condition with a domain error, so no caller sees a key, an item or a cancellation reason:

- a participant changed since it was read: `StaleWrite` (the action reads again and retries);
- the session has ended: `SessionEnded` (a `Gone`);
- a condition an operation names (already voted, poll closed, cap reached): the error named
  in its docstring, raised as is;
- only another transaction in flight on one of the same items: `TransactionConflict` (the
  very same write may be tried again);
- the request id was served already: `DuplicateRequest`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from townhall.errors import Conflict, Gone
from townhall.model.breakout import Breakouts
from townhall.model.chat import ChatMessage
from townhall.model.collaboration import Poll, Question, Stroke
from townhall.model.event import Audience
from townhall.model.participant import Participant
from townhall.model.session import Session

# -- what refuses a write ---------------------------------------------------------------------


class StaleWrite(Exception):
    """A participant the action read changed before its write landed: read again, decide
    again (`townhall.signaling.transaction.retrying`)."""


class TransactionConflict(Exception):
    """Another transaction was in flight on one of the same items. Nothing was decided: the
    very same write (same operations, same `seq`) may be tried again after a short pause."""


class DuplicateRequest(Exception):
    """The request id was already served for this participant."""


class SessionEnded(Gone):
    """The session has ended (or never ran): nothing more happens in it."""

    def __init__(self, message: str = "the meeting has ended") -> None:
        super().__init__(message)


class AlreadyVoted(Conflict):
    def __init__(self, message: str = "you already voted in this poll") -> None:
        super().__init__(message)


class PollClosed(Conflict):
    def __init__(self, message: str = "the poll is closed") -> None:
        super().__init__(message)


class AlreadyUpvoted(Conflict):
    def __init__(self, message: str = "you already upvoted this question") -> None:
        super().__init__(message)


class QuestionDismissed(Conflict):
    def __init__(self, message: str = "the question was dismissed") -> None:
        super().__init__(message)


class LimitReached(Conflict):
    """A per-session cap (polls, whiteboard strokes) would be exceeded."""


# -- the operations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ParticipantChange:
    """Set a participant's attributes to new values (None removes one), conditional on the
    participant being as it was read (`before.rev`); otherwise `StaleWrite`. The participant's
    `rev` becomes the write's `seq`."""

    before: Participant
    changes: dict[str, Any]


@dataclass(frozen=True)
class LockSession:
    """Lock or unlock the session (conditional, like every write, on it still running)."""

    locked: bool


@dataclass(frozen=True)
class EndSession:
    """End the session: its `ended_at`, its row in the meeting's list of sessions, and the
    meeting no longer naming it as the one running. `StaleWrite` if another end got there
    first."""

    session: Session
    ended_at: int  # ms


@dataclass(frozen=True)
class OpenAttendance:
    """Start an attendance interval of the participant (the summary counts them)."""

    participant_id: str
    joined_at: int  # ms


@dataclass(frozen=True)
class CloseAttendance:
    """End the attendance interval the participant opened at `joined_at`."""

    participant_id: str
    joined_at: int  # ms
    left_at: int  # ms


@dataclass(frozen=True)
class SetBreakouts:
    """Replace the session's breakout rooms with `after`, conditional on them being as read
    (`before_rev`; 0 when there were none); otherwise `StaleWrite`."""

    before_rev: int
    after: Breakouts


@dataclass(frozen=True)
class EnterRoom:
    """Record that the participant entered `room_id` ("" is the main room) at `at`: the
    summary's who was in which room, and when."""

    participant_id: str
    room_id: str
    at: int  # ms
    seq: int


@dataclass(frozen=True)
class AddChatMessage:
    message: ChatMessage


@dataclass(frozen=True)
class CreatePoll:
    """Refused with `LimitReached` once the session holds its cap of polls."""

    poll: Poll


@dataclass(frozen=True)
class CastVote:
    """Record the participant's choices and count them. Refused with `AlreadyVoted` on a
    second vote, and with `PollClosed` unless the poll exists and is open."""

    poll_id: str
    participant_id: str
    choices: tuple[int, ...]
    at: int  # ms


@dataclass(frozen=True)
class ClosePoll:
    """Refused with `PollClosed("the poll is already closed")` unless the poll is open."""

    poll_id: str
    at: int  # ms


@dataclass(frozen=True)
class AskQuestion:
    question: Question


@dataclass(frozen=True)
class UpvoteQuestion:
    """Refused with `AlreadyUpvoted` on a second upvote, and with `QuestionDismissed` unless
    the question exists and is not dismissed."""

    question_id: str
    participant_id: str
    at: int  # ms


@dataclass(frozen=True)
class AnswerQuestion:
    """Mark the question answered (with a text, or none). `QuestionDismissed` if it was."""

    question_id: str
    answer: str | None


@dataclass(frozen=True)
class DismissQuestion:
    """`QuestionDismissed` if it already was."""

    question_id: str


@dataclass(frozen=True)
class AddStroke:
    """Refused with `LimitReached` once the whiteboard holds its cap of strokes."""

    stroke: Stroke


@dataclass(frozen=True)
class ClearWhiteboard:
    """Hide every stroke of the room's board drawn before the clearing action's `seq` and reset
    its stroke cap."""

    seq: int
    room_id: str = ""


@dataclass(frozen=True)
class PublishEvent:
    """Tell others: keep the event in the session's outbox, with the change it reports, for
    the fan-out consumer to deliver to `audience` (`townhall.model.event`). The events of one
    write are numbered in order (`n`) under the write's `seq`; `close` ends the receiving
    connections once it is delivered."""

    type: str
    payload: dict[str, Any]
    audience: Audience
    close: bool = False
    keep_open: tuple[str, ...] = ()  # connections `close` spares
    subject: str | None = None  # see OutboxEvent.subject


Operation = (
    ParticipantChange
    | LockSession
    | EndSession
    | OpenAttendance
    | CloseAttendance
    | SetBreakouts
    | EnterRoom
    | AddChatMessage
    | CreatePoll
    | CastVote
    | ClosePoll
    | AskQuestion
    | UpvoteQuestion
    | AnswerQuestion
    | DismissQuestion
    | AddStroke
    | ClearWhiteboard
    | PublishEvent
)
