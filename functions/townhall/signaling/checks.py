"""The reads and checks that come before an action: the meeting is running, the caller is
admitted on this connection, and the participant acted on is there."""

from __future__ import annotations

from townhall.auth.claims import Role
from townhall.errors import Forbidden, Gone, NotFound
from townhall.signaling import permissions
from townhall.signaling.context import ActionContext, Caller, DuplicateRequestError
from townhall.signaling.protocol import Request
from townhall.store.meetings import Meeting, Participant


def acting(ctx: ActionContext, caller: Caller, request: Request) -> tuple[Meeting, Participant]:
    """The running meeting and the admitted caller, read in one round trip. A replayed
    request id is refused here, before it costs an event number; the transaction's
    condition still catches a replay that races the original."""
    meeting, me, seen = ctx.meetings.load(
        caller.meeting_id, caller.participant_id, request.request_id
    )
    found = running(meeting)
    if seen:
        raise DuplicateRequestError(f"request id {request.request_id} was already used")
    return found, admitted(caller, me)


def running_meeting(ctx: ActionContext, meeting_id: str) -> Meeting:
    return running(ctx.meetings.get_meeting(meeting_id))


def running(meeting: Meeting | None) -> Meeting:
    if meeting is None:
        raise NotFound("meeting not found")
    if meeting.ended_at:
        raise Gone("the meeting has ended")
    return meeting


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
    found = ctx.meetings.get_participant(caller.meeting_id, participant_id)
    if found is None or found.status not in statuses:
        raise NotFound(f"that participant is {missing}")
    return found


def may_enter_locked(p: Participant | None, role: Role) -> bool:
    """A locked meeting still lets in moderators and people already admitted."""
    if permissions.is_moderator(role):
        return True
    return p is not None and p.status == "admitted"
