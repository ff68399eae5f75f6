"""The reads and checks that come before an action: the session is running, the caller is
admitted on this connection, and the participant acted on is there."""

from __future__ import annotations

from townhall.auth.claims import Role
from townhall.errors import Forbidden, Gone, NotFound
from townhall.model.participant import Participant
from townhall.model.session import Session, SessionKey
from townhall.signaling import permissions
from townhall.signaling.context import ActionContext, Caller, DuplicateRequestError
from townhall.signaling.protocol import Request


def acting(ctx: ActionContext, caller: Caller, request: Request) -> tuple[Session, Participant]:
    """The running session and the admitted caller, read in one round trip. A replayed
    request id is refused here, before it costs an event number; the transaction's
    condition still catches a replay that races the original."""
    session, me, seen = ctx.sessions.load(caller.session, caller.participant_id, request.request_id)
    found = running(session)
    if seen:
        raise DuplicateRequestError(f"request id {request.request_id} was already used")
    return found, admitted(caller, me)


def running_session(ctx: ActionContext, key: SessionKey) -> Session:
    return running(ctx.sessions.get(key))


def running(session: Session | None) -> Session:
    if session is None:
        raise NotFound("meeting not found")
    if session.ended_at:
        # What people see: the meeting (its run they were in) has ended.
        raise Gone("the meeting has ended")
    return session


def admitted(caller: Caller, me: Participant | None) -> Participant:
    if me is None or me.connection_id != caller.connection_id:
        raise Forbidden("send 'join' on this connection first")
    if me.status == "waiting":
        raise Forbidden("you are in the waiting room")
    if me.status != "admitted":
        raise Forbidden(f"you were {me.status} from this meeting")
    return me


def other(
    ctx: ActionContext,
    caller: Caller,
    participant_id: str,
    statuses: tuple[str, ...],
    missing: str = "not in the meeting",
) -> Participant:
    """Another participant the caller acts on, in one of `statuses`, or NotFound."""
    found = ctx.participants.get(caller.session, participant_id)
    if found is None or found.status not in statuses:
        raise NotFound(f"that participant is {missing}")
    return found


def may_enter_locked(p: Participant | None, role: Role) -> bool:
    """A locked meeting still lets in moderators and people already admitted."""
    if permissions.is_moderator(role):
        return True
    return p is not None and p.status == "admitted"
