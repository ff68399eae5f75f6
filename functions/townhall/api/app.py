"""The HTTP API: accounts, scheduling and joining. FastAPI, served on Lambda through Mangum.

Routes live under /api because CloudFront sends /api/* to this API; the OpenAPI document and
its UI are at /api/openapi.json and /api/docs (and /docs redirects there).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from townhall import clock, runtime
from townhall.api import csv_export, idempotency
from townhall.api.models import (
    AccountOut,
    ErrorOut,
    HealthOut,
    JoinIn,
    JoinOut,
    JwksOut,
    MeetingIn,
    MeetingOut,
    OccurrenceOut,
    PublicMeetingOut,
    RefreshRequest,
    RejoinIn,
    SessionOut,
    SessionPageOut,
    SessionRowOut,
    SignIn,
    SignUp,
    SummaryOut,
)
from townhall.auth.accounts import AccountService, Session
from townhall.auth.api_keys import RateLimited, looks_like_key
from townhall.auth.claims import AccessClaims
from townhall.errors import DomainError, NotFound, Unauthenticated
from townhall.meetings.joining import JoinGrant, Joining, JoinRequest, host_side
from townhall.meetings.service import MeetingDraft, MeetingService, usable
from townhall.meetings.summary import SummaryReader, iso
from townhall.model.meeting import Meeting
from townhall.model.schedule import Occurrence
from townhall.routes import STAGE
from townhall.store.accounts import AccountStore
from townhall.store.meetings import MeetingStore
from townhall.store.organisations import OrganisationStore
from townhall.store.participants import ParticipantStore
from townhall.store.sessions import SessionRow, SessionStore

_STATUS = {
    "invalid_input": 422,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "gone": 410,
    "not_started": 409,
    "unavailable": 503,
    "idempotency_key_reused": 422,
    "rate_limited": 429,
}
# Errors the framework raises itself (no route, wrong method, a body it cannot read), in the
# same shape and vocabulary as the domain's.
_HTTP_CODES = {
    400: "invalid_input",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut} for status in (400, 401, 403, 404, 409, 410, 422)
}
# What any route may answer before it runs: a credential in the URL.
_URL_ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": ErrorOut}}
# Query parameters that would carry a credential: a URL is logged (CloudFront, proxies,
# browser history), so a key there is refused before any route runs, whichever route it is.
_CREDENTIAL_PARAMS = frozenset({"api_key", "apikey", "key", "access_token", "token"})
# Meeting ids are 10 of service._ID_ALPHABET; anything far from that cannot name a meeting. A
# long one would reach DynamoDB, which refuses keys over 2 KB with a ValidationException (a
# 500; moto does not check the size).
_MEETING_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
log = logging.getLogger(__name__)
_ICS_EXAMPLE = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Townhall//Meetings//EN\r\nBEGIN:VEVENT\r\n"
    "UID:k7m2p9q4rt@townhall\r\nSUMMARY:Standup\r\n...\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
_CSV_EXAMPLE = (
    "name,role,participant_id,joined_at,left_at,total_seconds\r\n"
    "Hana Host,host,u_5e1b2c3d4e5f6a7b,2026-12-01T09:01:00Z,2026-12-01T09:30:00Z,1740\r\n"
)

_bearer = HTTPBearer(
    auto_error=False,
    description="An access token from /api/auth/signin (every route), or an API key "
    "(`thk_...`, the /api/v1 partner routes only). Never in a query string.",
)


def accounts() -> AccountService:
    s = runtime.settings()
    return AccountService(
        AccountStore(s.accounts_table),
        runtime.token_service(),
        OrganisationStore(s.organisations_table),
    )


def meetings() -> MeetingService:
    table = runtime.settings().meetings_table
    return MeetingService(MeetingStore(table), SessionStore(table), ParticipantStore(table))


def joining() -> Joining:
    table = runtime.settings().meetings_table
    return Joining(
        MeetingStore(table), SessionStore(table), ParticipantStore(table), runtime.token_service()
    )


def optional_account(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AccessClaims | None:
    if credentials is None:
        return None
    if looks_like_key(credentials.credentials):
        raise Unauthenticated("API keys work on the partner routes (/api/v1) only")
    claims: AccessClaims = runtime.token_service().verify_access(credentials.credentials)
    return claims


def tolerant_account(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AccessClaims | None:
    """The signed-in account on a public route: a token that does not verify (expired,
    revoked key, garbage) is no account, never a refusal of what anyone may read."""
    try:
        return optional_account(credentials)
    except Unauthenticated:
        return None


def account(claims: Annotated[AccessClaims | None, Depends(optional_account)]) -> AccessClaims:
    if claims is None:
        raise Unauthenticated("sign in first: send Authorization: Bearer <access token>")
    return claims


def meeting_id_path(meeting_id: str) -> str:
    if not _MEETING_ID.fullmatch(meeting_id):
        raise NotFound("meeting not found")
    return meeting_id


def session_id_path(session_id: str) -> str:
    if not _MEETING_ID.fullmatch(session_id):
        raise NotFound("session not found")
    return session_id


Account = Annotated[AccessClaims, Depends(account)]
MeetingId = Annotated[str, Depends(meeting_id_path)]
SessionId = Annotated[str, Depends(session_id_path)]
MaybeAccount = Annotated[AccessClaims | None, Depends(optional_account)]
Reader = Annotated[AccessClaims | None, Depends(tolerant_account)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


def once(
    request: Request,
    scope: str,
    key: str | None,
    payload: dict[str, Any],
    work: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """`work` run once per (scope, Idempotency-Key): a retry gets the first answer
    (townhall.api.idempotency; the Lambda context lets an in-progress record expire with the
    invocation)."""
    return idempotency.run_once(
        runtime.settings().idempotency_table,
        scope,
        key,
        payload,
        work,
        request.scope.get("aws.context"),
    )


def public_origin(request: Request) -> str:
    """The origin people use: a configured one, else the host CloudFront saw (its viewer-request
    function copies it into x-forwarded-host), else the Host header."""
    configured = runtime.settings().public_base_url
    if configured:
        return configured
    host = request.headers.get("x-forwarded-host") or request.headers.get("host") or "localhost"
    proto = request.headers.get("x-forwarded-proto") or request.url.scheme
    if request.headers.get("cloudfront-forwarded-proto"):
        proto = request.headers["cloudfront-forwarded-proto"]
    return f"{proto}://{host}"


def join_url(request: Request, meeting_id: str) -> str:
    return f"{public_origin(request)}/join.html?m={meeting_id}"


def ws_url(request: Request) -> str:
    origin = public_origin(request)
    return (
        ("wss://" if origin.startswith("https://") else "ws://")
        + origin.split("://", 1)[1]
        + f"/{STAGE}"
    )


def _occurrence(o: Occurrence) -> OccurrenceOut:
    return OccurrenceOut(
        start=o.start.isoformat(),
        end=o.end.isoformat(),
        start_utc=o.start_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def _schedule_fields(m: Meeting) -> dict[str, Any]:
    """What both the host's and the public view say about when and what a meeting is.

    Written for items that may hold anything (written before validation, or by hand): each
    value is shown as it is, and `schedule_error` (Schedule.problem) says what is wrong."""
    start = m.schedule.start_local
    return {
        "meeting_id": m.meeting_id,
        "title": m.title,
        "kind": m.kind,
        "start": start.isoformat(timespec="minutes") if isinstance(start, datetime) else "",
        "timezone": str(m.schedule.timezone),
        "duration_minutes": m.schedule.duration_minutes,
    }


def _rrule_text(m: Meeting) -> str | None:
    rule = m.schedule.rrule
    return rule if rule is None or isinstance(rule, str) else str(rule)


def _meeting_out(
    request: Request, m: Meeting, occurrences: list[Occurrence] | None = None
) -> MeetingOut:
    if occurrences is None:
        occurrences = m.schedule.occurrences_after(clock.utc_now(), 5)  # [] if unusable
    return MeetingOut(
        **_schedule_fields(m),
        rrule=_rrule_text(m),
        passcode=m.passcode,
        waiting_room=m.waiting_room,
        allow_before_host=m.allow_before_host,
        cohosts=list(m.cohosts),
        live=m.live,
        live_session_id=m.live_session_id,
        last_session_at=iso(m.last_session_at / 1000) if m.last_session_at else None,
        video_slots=m.video_slots,
        join_url=join_url(request, m.meeting_id),
        invite_url=f"{public_origin(request)}/api/meetings/{m.meeting_id}/invite.ics",
        next_occurrences=[_occurrence(o) for o in occurrences],
        schedule_error=m.schedule.problem,
        stored_error=m.damage,
    )


def session_row_out(row: SessionRow) -> SessionRowOut:
    return SessionRowOut(
        session_id=row.session_id,
        started_at=iso(row.started_at / 1000) or "",
        ended_at=iso(row.ended_at / 1000) if row.ended_at else None,
        live=not row.ended_at,
    )


def _session_out(session: Session) -> dict[str, Any]:
    return SessionOut(**session.__dict__).model_dump()


def _join_out(request: Request, grant: JoinGrant) -> dict[str, Any]:
    return JoinOut(**grant.__dict__, ws_url=ws_url(request)).model_dump()


# -- routes ------------------------------------------------------------------------------------

auth_routes = APIRouter(prefix="/api/auth", tags=["auth"], responses=_ERRORS)
meeting_routes = APIRouter(prefix="/api/meetings", tags=["meetings"], responses=_ERRORS)


@auth_routes.post("/signup", status_code=201, response_model=SessionOut)
def sign_up(body: SignUp) -> dict[str, Any]:
    """Create a host account (it founds an organisation of its own, as its owner) and sign
    in: a 15-minute access token and a 30-day, one-use refresh token. 409 if the email has
    an account."""
    return _session_out(accounts().sign_up(body.email, body.password, body.name))


@auth_routes.post("/signin", response_model=SessionOut)
def sign_in(body: SignIn) -> dict[str, Any]:
    """Sign in with email and password: a new access token and refresh token. 401 for a
    wrong email or password (the same answer for both)."""
    return _session_out(accounts().sign_in(body.email, body.password))


@auth_routes.post("/refresh", response_model=SessionOut)
def refresh(body: RefreshRequest) -> dict[str, Any]:
    """Trade a refresh token (each works once) for a new access token and refresh token."""
    return _session_out(accounts().refresh(body.refresh_token))


@auth_routes.post("/signout", status_code=204)
def sign_out(body: RefreshRequest) -> Response:
    """Spend the refresh token so nobody can use it again (access tokens expire on their
    own within 15 minutes)."""
    accounts().sign_out(body.refresh_token)
    return Response(status_code=204)


@auth_routes.get("/me", response_model=AccountOut)
def me(claims: Account) -> dict[str, Any]:
    """The signed-in account, as its access token says."""
    return {"user_id": claims.user_id, "email": claims.email, "name": claims.name}


@meeting_routes.post("", status_code=201, response_model=MeetingOut)
def create_meeting(
    body: MeetingIn, request: Request, claims: Account, key: IdempotencyKey = None
) -> dict[str, Any]:
    """Schedule a meeting hosted by the signed-in account. With an `Idempotency-Key`, a
    request sent again returns the first answer instead of a second meeting."""
    payload = body.model_dump()

    def work() -> dict[str, Any]:
        meeting = meetings().create(claims, MeetingDraft(**payload))
        return _meeting_out(request, meeting).model_dump()

    return once(request, f"create:{claims.user_id}", key, payload, work)


@meeting_routes.get("", response_model=list[MeetingOut])
def list_meetings(request: Request, claims: Account) -> list[MeetingOut]:
    """The host's meetings: running now first, then what is coming (soonest first), then the
    rest (most recently run first)."""
    listing = meetings().listing(claims, clock.utc_now())
    return [_meeting_out(request, m, occ) for m, occ in listing]


@meeting_routes.get("/{meeting_id}", response_model=MeetingOut)
def get_meeting(meeting_id: MeetingId, request: Request, claims: Account) -> MeetingOut:
    """One of the host's meetings with its next occurrences (404 for anyone else's)."""
    service = meetings()
    return _meeting_out(request, service.current(service.owned(claims, meeting_id)))


@meeting_routes.put("/{meeting_id}", response_model=MeetingOut)
def update_meeting(
    meeting_id: MeetingId, body: MeetingIn, request: Request, claims: Account
) -> MeetingOut:
    """Replace the meeting's settings (it also repairs a damaged stored meeting); 409 if it
    changed meanwhile."""
    return _meeting_out(
        request, meetings().update(claims, meeting_id, MeetingDraft(**body.model_dump()))
    )


@meeting_routes.delete("/{meeting_id}", status_code=204)
def delete_meeting(meeting_id: MeetingId, claims: Account) -> Response:
    """Delete the meeting and every session's data; 409 while a session runs."""
    meetings().delete(claims, meeting_id)
    return Response(status_code=204)


@meeting_routes.get("/{meeting_id}/occurrences", response_model=list[OccurrenceOut])
def occurrences(
    meeting_id: MeetingId, claims: Account, count: Annotated[int, Query(ge=1, le=100)] = 10
) -> list[OccurrenceOut]:
    """The meeting's next `count` occurrences from now (409 if its stored schedule cannot
    be used)."""
    meeting = usable(meetings().owned(claims, meeting_id))  # 409 rather than a silent []
    return [_occurrence(o) for o in meeting.schedule.occurrences_after(clock.utc_now(), count)]


@meeting_routes.get(
    "/{meeting_id}/invite.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {"example": _ICS_EXAMPLE}}}},
)
def invite(meeting_id: MeetingId, request: Request, claims: Account) -> Response:
    """The meeting as an iCalendar invite (RFC 5545), with its join link and passcode."""
    service = meetings()
    meeting = service.owned(claims, meeting_id)
    return Response(
        service.invite(meeting, join_url(request, meeting_id)),
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="townhall-{meeting_id}.ics"'},
    )


@meeting_routes.get("/{meeting_id}/public", response_model=PublicMeetingOut)
def public_meeting(meeting_id: MeetingId, claims: Reader) -> PublicMeetingOut:
    """What the invite link's page shows anyone; with a bearer token, also whether the
    signed-in account is the meeting's host or one of its co-hosts."""
    m = meetings().public_info(meeting_id)
    return PublicMeetingOut(
        **_schedule_fields(m),
        needs_passcode=m.passcode is not None,
        waiting_room=m.waiting_room,
        live=m.live,
        allow_before_host=m.guests_may_start,
        next_occurrences=[_occurrence(o) for o in m.schedule.occurrences_after(clock.utc_now(), 3)],
        schedule_error=m.schedule.problem,
        stored_error=m.damage,
        your_role=host_side(m, claims),
    )


@meeting_routes.get("/{meeting_id}/sessions", response_model=SessionPageOut)
def list_sessions(
    meeting_id: MeetingId,
    claims: Account,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> SessionPageOut:
    """The meeting's sessions (each run of it), newest first, a page at a time."""
    rows, next_cursor = meetings().sessions(claims, meeting_id, limit, cursor)
    return SessionPageOut(sessions=[session_row_out(row) for row in rows], next_cursor=next_cursor)


def _summary(claims: AccessClaims, meeting_id: str, session_id: str | None) -> dict[str, Any]:
    session = meetings().session(claims, meeting_id, session_id)  # 404 for anyone but the host
    return SummaryReader(runtime.settings().meetings_table).summary(session)


@meeting_routes.get("/{meeting_id}/summary", response_model=SummaryOut)
def summary(meeting_id: MeetingId, claims: Account) -> dict[str, Any]:
    """The latest session's summary (running or ended), for the host: attendance, public chat,
    polls, Q&A."""
    return _summary(claims, meeting_id, None)


@meeting_routes.get("/{meeting_id}/sessions/{session_id}/summary", response_model=SummaryOut)
def session_summary(
    meeting_id: MeetingId, session_id: SessionId, claims: Account
) -> dict[str, Any]:
    """One session's summary, for the host."""
    return _summary(claims, meeting_id, session_id)


def _csv(
    claims: AccessClaims, meeting_id: str, session_id: str | None, part: csv_export.Part
) -> Response:
    text = csv_export.render(_summary(claims, meeting_id, session_id), part)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="townhall-{meeting_id}-{part}.csv"'},
    )


@meeting_routes.get(
    "/{meeting_id}/summary.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"example": _CSV_EXAMPLE}}}},
)
def summary_csv(
    meeting_id: MeetingId, claims: Account, part: Annotated[csv_export.Part, Query()]
) -> Response:
    """One part of the latest session's summary as a CSV download."""
    return _csv(claims, meeting_id, None, part)


@meeting_routes.get(
    "/{meeting_id}/sessions/{session_id}/summary.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"example": _CSV_EXAMPLE}}}},
)
def session_summary_csv(
    meeting_id: MeetingId,
    session_id: SessionId,
    claims: Account,
    part: Annotated[csv_export.Part, Query()],
) -> Response:
    """One part of a session's summary as a CSV download."""
    return _csv(claims, meeting_id, session_id, part)


@meeting_routes.post("/{meeting_id}/join", response_model=JoinOut)
def join(
    meeting_id: MeetingId,
    body: JoinIn,
    request: Request,
    claims: MaybeAccount,
    key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Join the meeting: signed in (the host side starts the session), as a guest with a
    `guest_key`, or with a join link's `invite`. Answers a join token for the WebSocket.
    409 `not_started` while a guest waits for the host."""
    payload = body.model_dump()

    service = joining()
    join_request = JoinRequest(body.display_name, body.passcode, body.guest_key, body.invite)
    # A key is scoped to the person: a guest's to their guest identity, so a key another
    # client reuses can never return this guest's credentials.
    who = service.identity(join_request, claims)

    def work() -> dict[str, Any]:
        return _join_out(request, service.join(meeting_id, join_request, claims))

    return once(request, f"join:{meeting_id}:{who}", key, payload, work)


@meeting_routes.post("/{meeting_id}/rejoin", response_model=JoinOut)
def rejoin(meeting_id: MeetingId, body: RejoinIn, request: Request) -> dict[str, Any]:
    """The same participant again, with a new join token, after a drop or a reload. Safe to
    send again if its answer was lost: the same request gets the same resume token."""
    grant = joining().rejoin(meeting_id, body.session_id, body.participant_id, body.resume_token)
    return _join_out(request, grant)


def create_app() -> FastAPI:
    app = FastAPI(
        title="Townhall API",
        version="0.1.0",
        summary="Accounts, scheduling and joining for Townhall meetings.",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.include_router(auth_routes)
    app.include_router(meeting_routes)
    # Imported here: the partner routes reuse this module's views (a meeting's shape, links).
    from townhall.api import webhooks  # noqa: F401  (adds the webhook routes to the partner routes)
    from townhall.api.partners import routes as partner_routes

    app.include_router(partner_routes)

    @app.middleware("http")
    async def refuse_credentials_in_url(request: Request, call_next: Any) -> Any:
        if any(
            name.lower() in _CREDENTIAL_PARAMS or looks_like_key(value)
            for name, value in request.query_params.multi_items()
        ):
            return _error(
                400,
                "credential_in_url",
                "credentials go in the Authorization header (Authorization: Bearer <key>), "
                "never in a URL, which is logged on the way: revoke a key sent like this",
            )
        return await call_next(request)

    @app.get("/api/health", tags=["ops"], response_model=HealthOut, responses=_URL_ERRORS)
    def health() -> dict[str, str]:
        """Whether the API answers (it touches no table)."""
        return {"status": "ok"}

    @app.get(
        "/api/.well-known/jwks.json", tags=["ops"], response_model=JwksOut, responses=_URL_ERRORS
    )
    def signing_keys(response: Response) -> dict[str, Any]:
        """The public keys that verify Townhall's tokens; media nodes verify media tokens with
        them and never hold the private key."""
        from townhall.auth.keys import load_signing_key
        from townhall.media.jwks import jwks

        response.headers["Cache-Control"] = "public, max-age=300"
        return jwks(load_signing_key(runtime.settings()))

    @app.get("/docs", include_in_schema=False)
    def docs_redirect() -> RedirectResponse:
        return RedirectResponse("/api/docs")

    @app.exception_handler(DomainError)
    def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        status = _STATUS.get(exc.code, 400)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, RateLimited):
            headers = {"Retry-After": str(exc.retry_after)}
        return _error(status, exc.code, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body')}: {e.get('msg')}"
            for e in exc.errors()[:20]  # the message is cut at 1,000 characters anyway
        ]
        return _error(422, "invalid_input", "; ".join(problems)[:1000])

    @app.exception_handler(HTTPException)
    def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        """No such route (404), wrong method (405), and a body FastAPI could not read: it
        raises 400 "There was an error parsing the body" from the decoding error."""
        if exc.status_code == 400 and exc.__cause__ is not None:
            return _error(422, "invalid_input", _unreadable(exc.__cause__))
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), exc.headers)

    @app.exception_handler(Exception)
    def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not a refusal: logged (Mangum logs the exception again) and answered in the
        # same shape, without details.
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return _error(500, "internal_error", "something went wrong on our side; try again")

    return app


def _error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    # A message may quote input; a lone surrogate in it would make the UTF-8 encoding of the
    # response raise and turn a refusal into a 500, so such characters are spelled out.
    text = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse(
        {"error": {"code": code, "message": text}}, status_code=status, headers=headers
    )


def _unreadable(cause: BaseException) -> str:
    """Why a request body could not be read as JSON, in words a client can act on."""
    if isinstance(cause, UnicodeDecodeError):
        return "the request body is not UTF-8 text"
    if isinstance(cause, RecursionError):
        return "the request body is nested too deeply"
    if isinstance(cause, ValueError):  # e.g. an integer of more than 4,300 digits
        return "the request body is not JSON that can be read"
    return "the request body could not be read"
