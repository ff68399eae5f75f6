"""The HTTP API: accounts, scheduling and joining. FastAPI, served on Lambda through Mangum.

Routes live under /api because CloudFront sends /api/* to this API; the OpenAPI document and
its UI are at /api/openapi.json and /api/docs (and /docs redirects there).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from townhall import runtime
from townhall.api import csv_export, idempotency
from townhall.api.models import (
    ErrorOut,
    JoinIn,
    JoinOut,
    MeetingIn,
    MeetingOut,
    OccurrenceOut,
    PublicMeetingOut,
    RefreshRequest,
    RejoinIn,
    SessionOut,
    SignIn,
    SignUp,
    SummaryOut,
)
from townhall.auth.accounts import AccountService, Session
from townhall.auth.claims import AccessClaims
from townhall.errors import DomainError, Unauthenticated
from townhall.meetings.schedule import Occurrence
from townhall.meetings.service import JoinGrant, MeetingDraft, MeetingService
from townhall.routes import STAGE
from townhall.store.accounts import AccountStore
from townhall.store.meetings import Meeting, MeetingStore
from townhall.store.summary import SummaryReader

_STATUS = {
    "invalid_input": 422,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "gone": 410,
    "idempotency_key_reused": 422,
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut} for status in (401, 403, 404, 409, 410, 422)
}

_bearer = HTTPBearer(auto_error=False)


def accounts() -> AccountService:
    return AccountService(AccountStore(runtime.settings().accounts_table), runtime.token_service())


def meetings() -> MeetingService:
    return MeetingService(MeetingStore(runtime.settings().meetings_table), runtime.token_service())


def optional_account(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AccessClaims | None:
    if credentials is None:
        return None
    claims: AccessClaims = runtime.token_service().verify_access(credentials.credentials)
    return claims


def account(claims: Annotated[AccessClaims | None, Depends(optional_account)]) -> AccessClaims:
    if claims is None:
        raise Unauthenticated("sign in first: send Authorization: Bearer <access token>")
    return claims


Account = Annotated[AccessClaims, Depends(account)]
MaybeAccount = Annotated[AccessClaims | None, Depends(optional_account)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


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
    """What both the host's and the public view say about when and what a meeting is."""
    return {
        "meeting_id": m.meeting_id,
        "title": m.title,
        "kind": m.kind,
        "start": m.schedule.start_local.isoformat(timespec="minutes"),
        "timezone": m.schedule.timezone,
        "duration_minutes": m.schedule.duration_minutes,
    }


def _meeting_out(
    request: Request, m: Meeting, occurrences: list[Occurrence] | None = None
) -> MeetingOut:
    if occurrences is None:
        occurrences = m.schedule.occurrences_after(datetime.now(UTC), 5)
    return MeetingOut(
        **_schedule_fields(m),
        rrule=m.schedule.rrule,
        passcode=m.passcode,
        waiting_room=m.waiting_room,
        locked=m.locked,
        ended=m.ended_at is not None,
        video_slots=m.video_slots,
        join_url=join_url(request, m.meeting_id),
        invite_url=f"{public_origin(request)}/api/meetings/{m.meeting_id}/invite.ics",
        next_occurrences=[_occurrence(o) for o in occurrences],
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
    return _session_out(accounts().sign_up(body.email, body.password, body.name))


@auth_routes.post("/signin", response_model=SessionOut)
def sign_in(body: SignIn) -> dict[str, Any]:
    return _session_out(accounts().sign_in(body.email, body.password))


@auth_routes.post("/refresh", response_model=SessionOut)
def refresh(body: RefreshRequest) -> dict[str, Any]:
    return _session_out(accounts().refresh(body.refresh_token))


@auth_routes.post("/signout", status_code=204)
def sign_out(body: RefreshRequest) -> Response:
    accounts().sign_out(body.refresh_token)
    return Response(status_code=204)


@auth_routes.get("/me")
def me(claims: Account) -> dict[str, Any]:
    return {"user_id": claims.user_id, "email": claims.email, "name": claims.name}


@meeting_routes.post("", status_code=201, response_model=MeetingOut)
def create_meeting(
    body: MeetingIn, request: Request, claims: Account, key: IdempotencyKey = None
) -> dict[str, Any]:
    payload = body.model_dump()

    def work() -> dict[str, Any]:
        meeting = meetings().create(claims, MeetingDraft(**payload))
        return _meeting_out(request, meeting).model_dump()

    return idempotency.run_once(
        runtime.settings().idempotency_table,
        f"create:{claims.user_id}",
        key,
        payload,
        work,
        request.scope.get("aws.context"),
    )


@meeting_routes.get("", response_model=list[MeetingOut])
def list_meetings(request: Request, claims: Account) -> list[MeetingOut]:
    upcoming = meetings().upcoming(claims, datetime.now(UTC))
    return [_meeting_out(request, m, occ) for m, occ in upcoming]


@meeting_routes.get("/{meeting_id}", response_model=MeetingOut)
def get_meeting(meeting_id: str, request: Request, claims: Account) -> MeetingOut:
    return _meeting_out(request, meetings().owned(claims, meeting_id))


@meeting_routes.put("/{meeting_id}", response_model=MeetingOut)
def update_meeting(
    meeting_id: str, body: MeetingIn, request: Request, claims: Account
) -> MeetingOut:
    return _meeting_out(
        request, meetings().update(claims, meeting_id, MeetingDraft(**body.model_dump()))
    )


@meeting_routes.delete("/{meeting_id}", status_code=204)
def delete_meeting(meeting_id: str, claims: Account) -> Response:
    meetings().delete(claims, meeting_id)
    return Response(status_code=204)


@meeting_routes.get("/{meeting_id}/occurrences", response_model=list[OccurrenceOut])
def occurrences(
    meeting_id: str, claims: Account, count: Annotated[int, Query(ge=1, le=100)] = 10
) -> list[OccurrenceOut]:
    meeting = meetings().owned(claims, meeting_id)
    return [_occurrence(o) for o in meeting.schedule.occurrences_after(datetime.now(UTC), count)]


@meeting_routes.get(
    "/{meeting_id}/invite.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}},
)
def invite(meeting_id: str, request: Request, claims: Account) -> Response:
    service = meetings()
    meeting = service.owned(claims, meeting_id)
    return Response(
        service.invite(meeting, join_url(request, meeting_id)),
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="townhall-{meeting_id}.ics"'},
    )


@meeting_routes.get("/{meeting_id}/public", response_model=PublicMeetingOut)
def public_meeting(meeting_id: str) -> PublicMeetingOut:
    m = meetings().public_info(meeting_id)
    return PublicMeetingOut(
        **_schedule_fields(m),
        needs_passcode=m.passcode is not None,
        waiting_room=m.waiting_room,
        ended=m.ended_at is not None,
        next_occurrences=[
            _occurrence(o) for o in m.schedule.occurrences_after(datetime.now(UTC), 3)
        ],
    )


def _summary(claims: AccessClaims, meeting_id: str) -> dict[str, Any]:
    meeting = meetings().owned(claims, meeting_id)  # 404 for anyone but the host
    return SummaryReader(MeetingStore(runtime.settings().meetings_table)).summary(meeting)


@meeting_routes.get("/{meeting_id}/summary", response_model=SummaryOut)
def summary(meeting_id: str, claims: Account) -> dict[str, Any]:
    """After (or during) the meeting, for its host: attendance, public chat, polls, Q&A."""
    return _summary(claims, meeting_id)


@meeting_routes.get(
    "/{meeting_id}/summary.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def summary_csv(
    meeting_id: str, claims: Account, part: Annotated[csv_export.Part, Query()]
) -> Response:
    """One part of the summary as a CSV download."""
    text = csv_export.render(_summary(claims, meeting_id), part)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="townhall-{meeting_id}-{part}.csv"'},
    )


@meeting_routes.post("/{meeting_id}/join", response_model=JoinOut)
def join(
    meeting_id: str,
    body: JoinIn,
    request: Request,
    claims: MaybeAccount,
    key: IdempotencyKey = None,
) -> dict[str, Any]:
    payload = body.model_dump()

    def work() -> dict[str, Any]:
        grant = meetings().join(meeting_id, body.display_name, body.passcode, claims)
        return _join_out(request, grant)

    caller = claims.user_id if claims else "guest"
    return idempotency.run_once(
        runtime.settings().idempotency_table,
        f"join:{meeting_id}:{caller}",
        key,
        payload,
        work,
        request.scope.get("aws.context"),
    )


@meeting_routes.post("/{meeting_id}/rejoin", response_model=JoinOut)
def rejoin(meeting_id: str, body: RejoinIn, request: Request) -> dict[str, Any]:
    grant = meetings().rejoin(meeting_id, body.participant_id, body.resume_token)
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

    @app.get("/api/health", tags=["ops"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/.well-known/jwks.json", tags=["ops"])
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
        return JSONResponse(
            {"error": {"code": exc.code, "message": exc.message}},
            status_code=status,
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body')}: {e.get('msg')}"
            for e in exc.errors()
        ]
        return JSONResponse(
            {"error": {"code": "invalid_input", "message": "; ".join(problems)[:1000]}},
            status_code=422,
        )

    return app
