"""The node's control API: SDP offer/answer, leave and revoke, for the control plane only.

Signaling relays a participant's SDP here with the participant's media token; this API is never
exposed to browsers (see docs/media-node.md for why the route goes through signaling). Every
request carries the token, and the token alone says which meeting and participant it is for
and whether it may publish: signaling grants nothing the token does not say.

    POST /v1/publish           {"token", "sdp"}  -> {"sdp": answer}
    POST /v1/subscribe         {"token"}         -> {"sdp": offer}
    POST /v1/subscribe/answer  {"token", "sdp"}  -> {}
    POST /v1/leave             {"token"}         -> {}
    POST /v1/revoke            {"token"}         -> {"revoked": "participant" | "meeting"}
    GET  /v1/health                              -> node id, state, load

`/v1/revoke` takes a revocation token, which only the control plane mints (its own audience: a
participant's media token cannot revoke anyone). It drops the participant's connections, or
closes the meeting's room, and from then on the worker refuses the media tokens it covers
(`revocations.Revocations`). The wire types and error codes are `contracts.node_api`.

Errors are `{"error": {"code", "message"}}`. Checks run in this order, and a refused request
never creates a room: body size (413), JSON shape (400), token (401 `unauthenticated`), a
revocation covering the token (401 `token_revoked`), may publish (403), draining (503); then a
room's ValueError is a 400.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contracts import node_api
from contracts.errors import TokenRejected
from contracts.media_tokens import MediaClaims, RevocationClaims
from contracts.node_api import WORKER_HEADER, ErrorCode
from media_fleet.service.keys import TokenGate
from media_fleet.service.revocations import Revocations, TooManyRevocations
from media_fleet.service.rooms import AdmissionWithdrawn, NoSuchSubscription, RoomDirectory
from media_fleet.service.wire import WireError, error_response, parse_object, read_body
from media_fleet.sfu.statistics import ForwardingStats

__all__ = ["WORKER_HEADER", "WorkerState", "control_app"]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class WorkerState:
    """What the API says about its worker, and whether it still takes new sessions."""

    node_id: str
    worker: int = 0
    draining: bool = False

    @property
    def state(self) -> Literal["active", "draining"]:
        return "draining" if self.draining else "active"


Handler = Callable[[Request], Awaitable[Response]]


def control_app(
    gate: TokenGate,
    rooms: RoomDirectory,
    worker: WorkerState,
    cpu: Callable[[], float] = lambda: 0.0,
    codecs: Callable[[], dict[str, int]] = lambda: {},
    forwarding: ForwardingStats | None = None,
    revocations: Revocations | None = None,
) -> Starlette:
    revoked = revocations if revocations is not None else Revocations()

    async def admitted(token: str) -> MediaClaims:
        """A verified media token that no revocation covers."""
        claims = await _verify(gate, token)
        refusal = revoked.refusal(claims)
        if refusal is not None:
            raise WireError(ErrorCode.TOKEN_REVOKED, refusal)
        return claims

    def still_admitted(claims: MediaClaims) -> Callable[[], bool]:
        return lambda: revoked.refusal(claims) is None

    async def in_room(claims: MediaClaims, call: Awaitable[T]) -> T:
        try:
            return await _room(call)
        except AdmissionWithdrawn as exc:
            message = revoked.refusal(claims) or str(exc)
            raise WireError(ErrorCode.TOKEN_REVOKED, message) from exc

    async def publish(request: Request) -> Response:
        body = await _body(request)
        token, sdp = _text(body, "token", required=False), _text(body, "sdp")
        ice_servers = _ice_servers(body)
        claims = await admitted(token)
        if not claims.may_publish:
            raise WireError(ErrorCode.FORBIDDEN, "this participant may not publish")
        _refuse_new_sessions_while_draining(worker)
        answer = await in_room(
            claims,
            rooms.publish(
                claims.meeting_id,
                claims.participant_id,
                sdp,
                claims.video_slots,
                still_admitted=still_admitted(claims),
                ice_servers=ice_servers,
            ),
        )
        published: node_api.PublishResponse = {"sdp": answer}
        return JSONResponse(published)

    async def subscribe(request: Request) -> Response:
        body = await _body(request)
        ice_servers = _ice_servers(body)
        claims = await admitted(_text(body, "token", required=False))
        _refuse_new_sessions_while_draining(worker)
        offer = await in_room(
            claims,
            rooms.subscribe(
                claims.meeting_id,
                claims.participant_id,
                claims.video_slots,
                still_admitted=still_admitted(claims),
                ice_servers=ice_servers,
            ),
        )
        subscribed: node_api.SubscribeResponse = {"sdp": offer}
        return JSONResponse(subscribed)

    async def subscribe_answer(request: Request) -> Response:
        body = await _body(request)
        token, sdp = _text(body, "token", required=False), _text(body, "sdp")
        claims = await admitted(token)
        try:
            await in_room(
                claims,
                rooms.accept_answer(
                    claims.meeting_id,
                    claims.participant_id,
                    sdp,
                    still_admitted=still_admitted(claims),
                ),
            )
        except NoSuchSubscription as exc:
            raise WireError(ErrorCode.NOT_FOUND, str(exc)) from exc
        return JSONResponse({})

    async def leave(request: Request) -> Response:
        body = await _body(request)
        # Not checked against revocations: leaving only ever takes something away.
        claims = await _verify(gate, _text(body, "token", required=False))
        await rooms.leave(claims.meeting_id, claims.participant_id)
        return JSONResponse({})

    async def revoke(request: Request) -> Response:
        body = await _body(request)
        revocation = await _verify_revocation(gate, _text(body, "token", required=False))
        try:
            # Held before the connections go, so no request can slip in between.
            revoked.revoke(revocation)
        except TooManyRevocations as exc:
            log.error("revocation of meeting %s refused: %s", revocation.meeting_id, exc)
            raise WireError(ErrorCode.OVERLOADED, str(exc)) from exc
        if revocation.participant_id is None:
            await rooms.close_meeting(revocation.meeting_id)
        else:
            await rooms.leave(revocation.meeting_id, revocation.participant_id)
        log.info(
            "revoked media of %s in meeting %s",
            revocation.participant_id or "every participant",
            revocation.meeting_id,
        )
        answer: node_api.RevokeResponse = {"revoked": revocation.scope}
        return JSONResponse(answer)

    async def health(_request: Request) -> Response:
        answer: node_api.WorkerHealth = {
            "node_id": worker.node_id,
            "worker": worker.worker,
            "state": worker.state,
            "meetings": len(rooms),
            "sessions": rooms.sessions(),
            "forwarded_streams": rooms.forwarded_streams(),
            "packets_per_second": rooms.packets_per_second(),
            "cpu": cpu(),
            # Decoders and encoders this worker ever created: forwarding needs none, and
            # tests through the twin assert both stay at zero.
            "codecs": codecs(),
            # Measurement only (bench/sfu_forwarding.py): this process and its own CPU
            # time, memory, and the rooms' forwarding counters.
            "pid": os.getpid(),
            "process_cpu_seconds": time.process_time(),
            "rss_bytes": _rss_bytes(),
        }
        _add_forwarding_figures(answer, forwarding)
        return JSONResponse(answer)

    app = Starlette(
        routes=[
            Route(node_api.PUBLISH_PATH, _guarded(publish), methods=["POST"]),
            Route(node_api.SUBSCRIBE_PATH, _guarded(subscribe), methods=["POST"]),
            Route(node_api.SUBSCRIBE_ANSWER_PATH, _guarded(subscribe_answer), methods=["POST"]),
            Route(node_api.LEAVE_PATH, _guarded(leave), methods=["POST"]),
            Route(node_api.REVOKE_PATH, _guarded(revoke), methods=["POST"]),
            Route(node_api.HEALTH_PATH, _guarded(health), methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error},  # type: ignore[dict-item]
    )
    app.add_middleware(_WorkerHeader, worker=worker.worker)
    return app


def _rss_bytes() -> int:
    """This process's resident memory (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _add_forwarding_figures(health: node_api.WorkerHealth, stats: ForwardingStats | None) -> None:
    """The worker's forwarding figures (`media_fleet.sfu.statistics`), into its health answer.

    `forwarded_packets` and `forward_latency_histogram` ([bucket, count] pairs, cumulative)
    never reset; `forward_latency_us` ({p50, p99, max, count}) covers the time since the
    previous health read. Without figures (an app made without a worker's), nothing to report.
    """
    if stats is None:
        health["forwarded_packets"] = 0
        health["forward_latency_us"] = {"p50": 0.0, "p99": 0.0, "max": 0.0, "count": 0}
        return
    health["forwarded_packets"] = stats.forwarded
    health["forward_latency_us"] = dict(stats.latency_since_last_read())
    health["forward_latency_histogram"] = [[i, c] for i, c in enumerate(stats.histogram) if c]


def _guarded(handler: Handler) -> Handler:
    """Maps refusals to JSON errors; an unexpected failure is logged and answered 500."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except WireError as exc:
            return error_response(exc.code, exc.message)
        except Exception:
            log.exception("control request %s failed", request.url.path)
            return error_response(ErrorCode.INTERNAL, "the media node could not handle the request")

    return run


async def _room(call: Awaitable[T]) -> T:
    """A room call; the room raises ValueError for an SDP it cannot take."""
    try:
        return await call
    except ValueError as exc:
        raise WireError(
            ErrorCode.INVALID_INPUT, str(exc) or "the media node refused the SDP"
        ) from exc


async def _body(request: Request) -> dict[str, Any]:
    return parse_object(await read_body(request))


def _text(body: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""  # a missing token is an authentication failure, not a malformed request
    if not isinstance(value, str):
        raise WireError(ErrorCode.INVALID_INPUT, f"'{name}' must be a string")
    if not value:
        raise WireError(ErrorCode.INVALID_INPUT, f"'{name}' must not be empty")
    return value


def _ice_servers(body: dict[str, Any]) -> list[node_api.IceServer]:
    try:
        return node_api.ice_servers_from(body)
    except ValueError as exc:
        raise WireError(ErrorCode.INVALID_INPUT, str(exc)) from exc


async def _verify(gate: TokenGate, token: str) -> MediaClaims:
    try:
        return await gate.verify(token)
    except TokenRejected as exc:
        raise WireError(ErrorCode.UNAUTHENTICATED, exc.message) from exc


async def _verify_revocation(gate: TokenGate, token: str) -> RevocationClaims:
    try:
        return await gate.verify_revocation(token)
    except TokenRejected as exc:
        raise WireError(ErrorCode.UNAUTHENTICATED, exc.message) from exc


def _refuse_new_sessions_while_draining(worker: WorkerState) -> None:
    if worker.draining:
        raise WireError(ErrorCode.DRAINING, "this media node is draining; ask signaling again")


async def _http_error(_request: Request, exc: HTTPException) -> Response:
    code = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}.get(
        exc.status_code, ErrorCode.BAD_REQUEST
    )
    return error_response(code, str(exc.detail), status=exc.status_code)


class _WorkerHeader:
    """Names the worker that answered: routing is observable in logs and tests."""

    def __init__(self, app: Any, worker: int) -> None:
        self._app = app
        self._value = str(worker).encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_header(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (WORKER_HEADER.encode(), self._value)]
            await send(message)

        await self._app(scope, receive, send_with_header)
