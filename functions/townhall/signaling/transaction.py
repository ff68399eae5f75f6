"""The one write path of every action: take an event number, commit one transaction, retry.

An action reads what it needs, decides, takes the session's next `seq`, and commits its whole
effect (`Write`) in one DynamoDB transaction together with the request's replay record. Three
things can stop the commit, and each has one answer here:

- the request id was served already: `DuplicateRequestError`;
- a condition failed: a participant changed since it was read (`StaleWrite`, which
  `retrying` answers by running the action's attempt again on fresh reads), the session ended
  (`Gone`), or a condition the action named in `Write.refusals` (already voted, poll closed,
  cap reached: that error);
- only a concurrent transaction on the same item (DynamoDB's TransactionConflict, which
  botocore does not retry): the very same transaction is tried again after a short random
  pause, since its items and seq stay valid.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from townhall.errors import Conflict, DomainError, Gone
from townhall.model.session import SessionKey
from townhall.signaling.context import ActionContext, Caller, DuplicateRequestError
from townhall.signaling.protocol import Request
from townhall.store.sessions import DuplicateRequest, ParticipantChange, StaleWrite

T = TypeVar("T")

# Rounds of read, decide, commit for an action whose participants keep changing under it.
WRITE_ATTEMPTS = 4
# Tries of one transaction cancelled only by a concurrent one on the same item.
CONFLICT_ATTEMPTS = 6


@dataclass(frozen=True)
class Write:
    """One action's whole effect, committed atomically or not at all."""

    participants: Sequence[ParticipantChange] = ()
    session_changes: Mapping[str, Any] | None = None
    puts: Sequence[dict[str, Any]] = ()
    # Ready-made transaction items (the collaboration stores' conditional puts and updates).
    extra: Sequence[dict[str, Any]] = ()
    # A failed condition on one of these sort keys is answered with its error.
    refusals: Mapping[str, DomainError] = field(default_factory=dict)


def next_seq(ctx: ActionContext, session: SessionKey) -> int:
    """The session's next event number; Gone once the session has ended."""
    try:
        return ctx.sessions.next_seq(session)
    except StaleWrite as exc:
        raise Gone("the meeting has ended") from exc


def commit(
    ctx: ActionContext,
    caller: Caller,
    request: Request | None,
    seq: int,
    write: Write = Write(),
) -> None:
    """Commit `write` with the request's replay record (none when `request` is None, for the
    server's own follow-ups). Raises StaleWrite only for a participant that changed."""
    record = (caller.participant_id, request.request_id) if request is not None else None
    for attempt in range(CONFLICT_ATTEMPTS):
        try:
            ctx.sessions.commit(
                caller.session,
                seq,
                request=record,
                participants=write.participants,
                session_changes=write.session_changes,
                puts=write.puts,
                extra=write.extra,
            )
            return
        except DuplicateRequest as exc:
            raise DuplicateRequestError(f"request id {exc} was already used") from exc
        except StaleWrite as exc:
            for sk in exc.failed:
                if sk in write.refusals:
                    raise write.refusals[sk] from exc
            if "META" in exc.failed:
                raise Gone("the meeting has ended") from exc
            if exc.failed:
                raise
            if attempt == CONFLICT_ATTEMPTS - 1:
                raise Conflict("the meeting is busy; retry the request") from exc
            ctx.pause(random.uniform(0.005, 0.02) * (attempt + 1))


def retrying(attempt: Callable[[], T]) -> T:
    """Run `attempt` (read, decide, commit, announce) until its commit lands: a StaleWrite
    means someone changed a participant it read, so it runs again on fresh reads."""
    for _ in range(WRITE_ATTEMPTS):
        try:
            return attempt()
        except StaleWrite:
            continue
    raise Conflict("the meeting is busy; retry the request")
