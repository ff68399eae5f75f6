"""The partner API under /api/v1 (docs/partners.md): the organisation, its API keys, and its
meetings and sessions for a key or a signed-in member. Thin: each route resolves the caller,
calls `townhall.meetings.partners` or `townhall.auth`, and shapes the answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials

from townhall import runtime
from townhall.api import app as views
from townhall.api.models import ErrorOut, MeetingIn, MeetingOut
from townhall.api.partner_models import (
    ApiKeyCreatedOut,
    ApiKeyIn,
    ApiKeyPageOut,
    AttendancePageOut,
    ChatPageOut,
    JoinLinkIn,
    JoinLinkOut,
    MeetingPageOut,
    MemberIn,
    MemberOut,
    MemberPageOut,
    OrganisationOut,
    PartnerSessionPageOut,
    PollPageOut,
    QuestionPageOut,
    RecordingPageOut,
    RegistrantPageOut,
    SessionDetailOut,
)
from townhall.auth.api_keys import PREFIX, ApiKeyService, looks_like_key
from townhall.auth.organisations import OrganisationService
from townhall.auth.principals import Principal
from townhall.errors import InvalidInput, Unauthenticated
from townhall.meetings.partners import PartnerMeetings
from townhall.meetings.service import MeetingDraft
from townhall.meetings.summary import SummaryReader, iso
from townhall.model.organisation import ApiKey, Membership
from townhall.model.session import Session
from townhall.store.accounts import AccountStore
from townhall.store.cursors import DEFAULT_PAGE, MAX_PAGE
from townhall.store.meetings import MeetingStore
from townhall.store.organisations import OrganisationStore
from townhall.store.sessions import SessionStore

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "an API key was sent in the query string"},
    401: {"model": ErrorOut, "description": "no credential, or one that is not valid"},
    403: {"model": ErrorOut, "description": "the key or role lacks the scope"},
    404: {"model": ErrorOut, "description": "no such thing in your organisation"},
    409: {"model": ErrorOut, "description": "the state does not allow it"},
    422: {"model": ErrorOut, "description": "the input is not valid (nothing was changed)"},
    429: {
        "model": ErrorOut,
        "description": "the key's rate is used up: retry after `Retry-After` seconds",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"page size, 1 to {MAX_PAGE}")]
Cursor = Annotated[
    str | None,
    Query(max_length=400, description="the previous page's `next_cursor`; none: the first page"),
]


def organisations() -> OrganisationService:
    s = runtime.settings()
    return OrganisationService(
        OrganisationStore(s.organisations_table), AccountStore(s.accounts_table)
    )


def api_keys() -> ApiKeyService:
    return ApiKeyService(OrganisationStore(runtime.settings().organisations_table))


def partner_meetings() -> PartnerMeetings:
    s = runtime.settings()
    table = s.meetings_table
    return PartnerMeetings(
        views.meetings(),
        MeetingStore(table),
        SessionStore(table),
        AccountStore(s.accounts_table),
        OrganisationStore(s.organisations_table),
        runtime.token_service(),
    )


def principal(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(views._bearer)],
) -> Principal:
    """An API key (`Bearer thk_...`) or a member's access token (`Bearer eyJ...`)."""
    if credentials is None:
        raise Unauthenticated(f"send Authorization: Bearer <API key ({PREFIX}...) or access token>")
    token = credentials.credentials
    if looks_like_key(token):
        return api_keys().authenticate(token)
    return organisations().principal(runtime.token_service().verify_access(token))


Caller = Annotated[Principal, Depends(principal)]
MeetingId = Annotated[str, Depends(views.meeting_id_path)]
SessionId = Annotated[str, Depends(views.session_id_path)]

routes = APIRouter(prefix="/api/v1", responses=_ERRORS)


def _key_out(key: ApiKey) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "prefix": f"{PREFIX}{key.key_id}",
        "name": key.name,
        "scopes": list(key.scopes),
        "rate_per_second": key.rate_per_second,
        "created_at": iso(key.created_at),
        "created_by": key.created_by,
        "revoked_at": iso(key.revoked_at) if key.revoked else None,
        "last_used_at": iso(key.last_used_at) if key.last_used_at else None,
    }


def _member_out(m: Membership) -> dict[str, Any]:
    return {
        "user_id": m.user_id,
        "email": m.email,
        "name": m.name,
        "role": m.role,
        "joined_at": iso(m.joined_at),
    }


# -- the organisation -----------------------------------------------------------------------


@routes.get(
    "/organisation",
    response_model=OrganisationOut,
    tags=["organisation"],
    summary="Your organisation",
)
def organisation(caller: Caller) -> dict[str, Any]:
    """The organisation the key or the signed-in member acts for, and the member's role."""
    org = organisations().organisation(caller)
    return {
        "org_id": org.org_id,
        "name": org.name,
        "created_at": iso(org.created_at),
        "your_role": caller.role,
    }


@routes.get(
    "/organisation/members",
    response_model=MemberPageOut,
    tags=["organisation"],
    summary="List members",
)
def members(
    caller: Caller, limit: PageSize = DEFAULT_PAGE, cursor: Cursor = None
) -> dict[str, Any]:
    """The organisation's members and their roles, a page at a time (by user id)."""
    page = organisations().members(caller, limit, cursor)
    return {"items": [_member_out(m) for m in page.items], "next_cursor": page.next_cursor}


@routes.post(
    "/organisation/members",
    status_code=201,
    response_model=MemberOut,
    tags=["organisation"],
    summary="Add a member",
)
def add_member(body: MemberIn, caller: Caller) -> dict[str, Any]:
    """Bring an existing account into the organisation with a role (owner or admin, signed
    in). The account must be alone in the organisation it founded, with no live keys; that
    organisation closes. Only an owner adds an owner."""
    return _member_out(organisations().add_member(caller, body.email, body.role))


# -- API keys -----------------------------------------------------------------------------------


@routes.post(
    "/keys",
    status_code=201,
    response_model=ApiKeyCreatedOut,
    tags=["api keys"],
    summary="Create an API key",
)
def create_key(body: ApiKeyIn, caller: Caller) -> dict[str, Any]:
    """A new key for the organisation (owner or admin, signed in). The answer's `key` is the
    only time the whole key is shown: store it in a secret manager."""
    issued = api_keys().create(caller, body.name, list(body.scopes), body.rate_per_second)
    return {**_key_out(issued.key), "key": issued.token}


@routes.get("/keys", response_model=ApiKeyPageOut, tags=["api keys"], summary="List API keys")
def list_keys(
    caller: Caller, limit: PageSize = DEFAULT_PAGE, cursor: Cursor = None
) -> dict[str, Any]:
    """The organisation's keys, oldest first, revoked ones too (never their secrets)."""
    page = api_keys().keys(caller, limit, cursor)
    return {"items": [_key_out(k) for k in page.items], "next_cursor": page.next_cursor}


@routes.delete("/keys/{key_id}", status_code=204, tags=["api keys"], summary="Revoke an API key")
def revoke_key(key_id: str, caller: Caller) -> Response:
    """Revoke the key: from the next request on, it is refused (401). Revoking again is
    harmless; the first revocation time stands."""
    api_keys().revoke(caller, key_id)
    return Response(status_code=204)


# -- meetings -----------------------------------------------------------------------------------


@routes.post(
    "/meetings",
    status_code=201,
    response_model=MeetingOut,
    tags=["partner meetings"],
    summary="Schedule a meeting",
)
def create_meeting(
    body: MeetingIn, request: Request, caller: Caller, key: views.IdempotencyKey = None
) -> dict[str, Any]:
    """Schedule a meeting (scope meetings:write). Its host is the signed-in member, or the
    member who created the key. With an `Idempotency-Key`, a request sent again (a timeout, a
    retry) returns the first answer instead of a second meeting."""
    payload = body.model_dump()

    def work() -> dict[str, Any]:
        meeting = partner_meetings().create(caller, MeetingDraft(**payload))
        return views._meeting_out(request, meeting).model_dump()

    scope = f"partner-create:{caller.org_id}:{caller.key_id or caller.user_id}"
    return views.once(request, scope, key, payload, work)


@routes.get(
    "/meetings", response_model=MeetingPageOut, tags=["partner meetings"], summary="List meetings"
)
def list_meetings(
    request: Request, caller: Caller, limit: PageSize = DEFAULT_PAGE, cursor: Cursor = None
) -> dict[str, Any]:
    """The organisation's meetings (scope meetings:read), by host, then by scheduled start."""
    page = partner_meetings().listing(caller, limit, cursor)
    items = [views._meeting_out(request, m) for m in page.items]
    return {"items": items, "next_cursor": page.next_cursor}


@routes.get(
    "/meetings/{meeting_id}",
    response_model=MeetingOut,
    tags=["partner meetings"],
    summary="Get a meeting",
)
def get_meeting(meeting_id: MeetingId, request: Request, caller: Caller) -> MeetingOut:
    """One of the organisation's meetings (scope meetings:read)."""
    return views._meeting_out(request, partner_meetings().get(caller, meeting_id))


@routes.put(
    "/meetings/{meeting_id}",
    response_model=MeetingOut,
    tags=["partner meetings"],
    summary="Edit a meeting",
)
def update_meeting(
    meeting_id: MeetingId, body: MeetingIn, request: Request, caller: Caller
) -> MeetingOut:
    """Replace the meeting's settings (scope meetings:write), as its host would."""
    meeting = partner_meetings().update(caller, meeting_id, MeetingDraft(**body.model_dump()))
    return views._meeting_out(request, meeting)


@routes.delete(
    "/meetings/{meeting_id}",
    status_code=204,
    tags=["partner meetings"],
    summary="Delete a meeting",
)
def delete_meeting(meeting_id: MeetingId, caller: Caller) -> Response:
    """Delete the meeting and its sessions' data (scope meetings:write); not while a session
    runs (409: end it first)."""
    partner_meetings().delete(caller, meeting_id)
    return Response(status_code=204)


@routes.post(
    "/meetings/{meeting_id}/join-links",
    status_code=201,
    response_model=JoinLinkOut,
    tags=["partner meetings"],
    summary="Make a join link for a named participant",
)
def join_link(
    meeting_id: MeetingId, body: JoinLinkIn, request: Request, caller: Caller
) -> dict[str, Any]:
    """A link that lets one person join under the given name, without the passcode, until
    it expires (scope meetings:write). The same link is the same participant each time."""
    invite = partner_meetings().invite(
        caller, meeting_id, body.display_name, body.expires_in_minutes
    )
    return {
        "meeting_id": meeting_id,
        "display_name": invite.name,
        "join_url": f"{views.join_url(request, meeting_id)}#invite={invite.token}",
        "invite": invite.token,
        "expires_at": invite.expires_at,
    }


@routes.get(
    "/meetings/{meeting_id}/registrants",
    response_model=RegistrantPageOut,
    tags=["partner meetings"],
    summary="List registrants (empty until registration exists)",
)
def registrants(
    meeting_id: MeetingId, caller: Caller, limit: PageSize = DEFAULT_PAGE, cursor: Cursor = None
) -> dict[str, Any]:
    """The webinar's registrants (scope meetings:read). Registration does not exist yet, so
    the page is always empty; the shape is the one it will have."""
    caller.require("meetings:read")
    return _empty_page(caller, meeting_id, cursor)


@routes.get(
    "/meetings/{meeting_id}/recordings",
    response_model=RecordingPageOut,
    tags=["partner meetings"],
    summary="List recordings (empty until recording exists)",
)
def recordings(
    meeting_id: MeetingId, caller: Caller, limit: PageSize = DEFAULT_PAGE, cursor: Cursor = None
) -> dict[str, Any]:
    """The meeting's recordings (scope recordings:read). Recording does not exist yet, so the
    page is always empty; the shape is the one it will have."""
    caller.require("recordings:read")
    return _empty_page(caller, meeting_id, cursor)


def _empty_page(caller: Principal, meeting_id: str, cursor: str | None) -> dict[str, Any]:
    """A list with nothing in it yet: the meeting is checked like any other, and no cursor
    can be valid (no page ever had a next one)."""
    partner_meetings().owned(caller, meeting_id)
    if cursor is not None:
        raise InvalidInput("cursor is not valid: this list has a single, empty page")
    return {"items": [], "next_cursor": None}


# -- sessions -----------------------------------------------------------------------------------


@routes.get(
    "/meetings/{meeting_id}/sessions",
    response_model=PartnerSessionPageOut,
    tags=["partner sessions"],
    summary="List a meeting's sessions",
)
def sessions(
    meeting_id: MeetingId, caller: Caller, limit: PageSize = DEFAULT_PAGE, cursor: Cursor = None
) -> dict[str, Any]:
    """Each run of the meeting, newest first (scope sessions:read)."""
    page = partner_meetings().sessions(caller, meeting_id, limit, cursor)
    items = [views.session_row_out(row) for row in page.items]
    return {"items": items, "next_cursor": page.next_cursor}


def _session_out(s: Session) -> dict[str, Any]:
    return {
        "meeting_id": s.meeting_id,
        "session_id": s.session_id,
        "title": s.title,
        "started_at": iso(s.started_at / 1000),
        "ended_at": iso(s.ended_at / 1000) if s.ended_at else None,
        "live": s.running,
    }


@routes.get(
    "/meetings/{meeting_id}/sessions/{session_id}",
    response_model=SessionDetailOut,
    tags=["partner sessions"],
    summary="Get a session",
)
def session(meeting_id: MeetingId, session_id: SessionId, caller: Caller) -> dict[str, Any]:
    """One session: when it started and ended, and whether it runs (scope sessions:read)."""
    return _session_out(partner_meetings().session(caller, meeting_id, session_id))


@routes.post(
    "/meetings/{meeting_id}/sessions/{session_id}/end",
    response_model=SessionDetailOut,
    tags=["partner sessions"],
    summary="End a live session",
)
def end_session(meeting_id: MeetingId, session_id: SessionId, caller: Caller) -> dict[str, Any]:
    """End the running session for everyone, as the host's "End for all" (scope
    meetings:write): `meeting.ended` (`by: "api"`) reaches every participant and their
    sockets close. 409 if it has ended already."""
    return _session_out(partner_meetings().end(caller, meeting_id, session_id))


# The parts of a session's summary, each a list of its own: (part, page model, summary,
# description).
_SUMMARY_PARTS = (
    (
        "attendance",
        AttendancePageOut,
        "List a session's attendance",
        "Everyone who was let in, by first arrival, with each interval they were in and "
        "their breakout rooms (scope sessions:read).",
    ),
    (
        "chat",
        ChatPageOut,
        "List a session's public chat",
        "The public chat, in order; private messages stay private (scope sessions:read).",
    ),
    (
        "polls",
        PollPageOut,
        "List a session's polls",
        "Each poll with its options, counts and voters (scope sessions:read).",
    ),
    (
        "questions",
        QuestionPageOut,
        "List a session's Q&A",
        "The questions asked, most votes first, with answers (scope sessions:read).",
    ),
)


def _summary_part_route(part: str) -> Callable[..., dict[str, Any]]:
    def list_part(
        meeting_id: MeetingId,
        session_id: SessionId,
        caller: Caller,
        limit: PageSize = DEFAULT_PAGE,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        reader = SummaryReader(runtime.settings().meetings_table)
        page = partner_meetings().summary_part(
            caller, reader, meeting_id, session_id, part, limit, cursor
        )
        return {"items": page.items, "next_cursor": page.next_cursor}

    return list_part


def _add_summary_part_routes() -> None:
    for part, model, summary, description in _SUMMARY_PARTS:
        routes.add_api_route(
            f"/meetings/{{meeting_id}}/sessions/{{session_id}}/{part}",
            _summary_part_route(part),
            methods=["GET"],
            response_model=model,
            tags=["partner sessions"],
            summary=summary,
            description=description,
            name=f"list_{part}",
        )


_add_summary_part_routes()
