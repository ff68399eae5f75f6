"""The one write path of every action: take an event number, commit one typed write, retry.

An action reads what it needs, decides, takes the session's next `seq`, and commits its whole
effect in one write together with the request's replay record. The write is a sequence of
operations in the domain's terms (`townhall.store.writes`: a participant change, a chat
message, a vote...); the store keeps it atomically and answers a failed condition with a
domain error. What can stop the commit, and each one's answer:

- the request id was served already: `DuplicateRequestError`;
- a condition an operation names (already voted, poll closed, cap reached) or the session's
  end (`SessionEnded`, a `Gone`): that error, as the store raised it;
- a participant changed since it was read: `StaleWrite`, which `retrying` answers by running
  the action's attempt again on fresh reads;
- only a concurrent transaction on the same item (`TransactionConflict`; DynamoDB's, which
  botocore does not retry): the very same write is tried again after a short random pause,
  since its operations and seq stay valid.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TypeVar

from townhall.errors import Conflict
from townhall.model.session import SessionKey
from townhall.signaling.context import ActionContext, Caller, DuplicateRequestError
from townhall.signaling.protocol import Request
from townhall.store.writes import DuplicateRequest, Operation, StaleWrite, TransactionConflict

T = TypeVar("T")

# Rounds of read, decide, commit for an action whose participants keep changing under it.
WRITE_ATTEMPTS = 4
# Tries of one transaction cancelled only by a concurrent one on the same item.
CONFLICT_ATTEMPTS = 6


def next_seq(ctx: ActionContext, session: SessionKey) -> int:
    """The session's next event number; SessionEnded (a Gone) once the session has ended."""
    return ctx.sessions.next_seq(session)


def commit(
    ctx: ActionContext,
    caller: Caller,
    request: Request | None,
    seq: int,
    write: Sequence[Operation] = (),
) -> None:
    """Commit `write` with the request's replay record (none when `request` is None, for the
    server's own follow-ups). Raises StaleWrite only for a participant that changed."""
    record = (caller.participant_id, request.request_id) if request is not None else None
    _commit(ctx, caller.session, seq, write, record)


def commit_follow_up(
    ctx: ActionContext,
    session: SessionKey,
    seq: int,
    write: Sequence[Operation],
    record: tuple[str, str] | None = None,
) -> None:
    """Commit a write that follows a connection's end (found gone, closed, or left), made by
    code without a Caller: the same path as `commit`. `record` (participant id, request id)
    is the request it serves, when one asked for it (`leave`)."""
    _commit(ctx, session, seq, write, record)


def _commit(
    ctx: ActionContext,
    session: SessionKey,
    seq: int,
    write: Sequence[Operation],
    record: tuple[str, str] | None,
) -> None:
    for attempt in range(CONFLICT_ATTEMPTS):
        try:
            ctx.sessions.commit(session, seq, write, request=record)
            return
        except DuplicateRequest as exc:
            raise DuplicateRequestError(f"request id {exc} was already used") from exc
        except TransactionConflict as exc:
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
