"""The node's control API: SDP offer/answer and leave, for the control plane only.

Signaling relays a participant's SDP here with the participant's media token; this API is never
exposed to browsers (see docs/media-node.md for why the route goes through signaling). Every
request carries the token, and the token alone says which meeting and participant it is for
and whether it may publish: signaling grants nothing the token does not say.

    POST /v1/publish           {"token", "sdp"}  -> {"sdp": answer}
    POST /v1/subscribe         {"token"}         -> {"sdp": offer}
    POST /v1/subscribe/answer  {"token", "sdp"}  -> {}
    POST /v1/leave             {"token"}         -> {}
    GET  /v1/health                              -> node id, state, load

Errors are `{"error": {"code", "message"}}`. Checks run in this order, and a refused request
never creates a room: body size (413), JSON shape (400), token (401), may publish (403),
draining (503); then a room's ValueError is a 400.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from media_fleet.service.keys import TokenGate
from media_fleet.service.rooms import NoSuchSubscription, RoomDirectory
from media_fleet.service.wire import WireError, error_response, parse_object, read_body
from media_fleet.sfu.statistics import ForwardingStats
from townhall.errors import Unauthenticated
from townhall.media.tokens import MediaClaims

log = logging.getLogger(__name__)

WORKER_HEADER = "x-townhall-worker"

T = TypeVar("T")


@dataclass
class WorkerState:
    """What the API says about its worker, and whether it still takes new sessions."""

    node_id: str
    worker: int = 0
    draining: bool = False

    @property
    def state(self) -> str:
        return "draining" if self.draining else "active"


Handler = Callable[[Request], Awaitable[Response]]


def control_app(
    gate: TokenGate,
    rooms: RoomDirectory,
    worker: WorkerState,
    cpu: Callable[[], float] = lambda: 0.0,
    codecs: Callable[[], dict[str, int]] = lambda: {},
    forwarding: ForwardingStats | None = None,
) -> Starlette:
    async def publish(request: Request) -> Response:
        body = await _body(request)
        token, sdp = _text(body, "token", required=False), _text(body, "sdp")
        claims = await _verify(gate, token)
        if not claims.may_publish:
            raise WireError(403, "forbidden", "this participant may not publish")
        _refuse_new_sessions_while_draining(worker)
        answer = await _room(
            rooms.publish(claims.meeting_id, claims.participant_id, sdp, claims.video_slots)
        )
        return JSONResponse({"sdp": answer})

    async def subscribe(request: Request) -> Response:
        body = await _body(request)
        claims = await _verify(gate, _text(body, "token", required=False))
        _refuse_new_sessions_while_draining(worker)
        offer = await _room(
            rooms.subscribe(claims.meeting_id, claims.participant_id, claims.video_slots)
        )
        return JSONResponse({"sdp": offer})

    async def subscribe_answer(request: Request) -> Response:
        body = await _body(request)
        token, sdp = _text(body, "token", required=False), _text(body, "sdp")
        claims = await _verify(gate, token)
        try:
            await _room(rooms.accept_answer(claims.meeting_id, claims.participant_id, sdp))
        except NoSuchSubscription as exc:
            raise WireError(404, "not_found", str(exc)) from exc
        return JSONResponse({})

    async def leave(request: Request) -> Response:
        body = await _body(request)
        claims = await _verify(gate, _text(body, "token", required=False))
        await rooms.leave(claims.meeting_id, claims.participant_id)
        return JSONResponse({})

    async def health(_request: Request) -> Response:
        return JSONResponse(
            {
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
                **_forwarding_figures(forwarding),
            }
        )

    app = Starlette(
        routes=[
            Route("/v1/publish", _guarded(publish), methods=["POST"]),
            Route("/v1/subscribe", _guarded(subscribe), methods=["POST"]),
            Route("/v1/subscribe/answer", _guarded(subscribe_answer), methods=["POST"]),
            Route("/v1/leave", _guarded(leave), methods=["POST"]),
            Route("/v1/health", _guarded(health), methods=["GET"]),
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


def _forwarding_figures(stats: ForwardingStats | None) -> dict[str, Any]:
    """The worker's forwarding figures (`media_fleet.sfu.statistics`), for the health answer.

    `forwarded_packets` and `forward_latency_histogram` ([bucket, count] pairs, cumulative)
    never reset; `forward_latency_us` ({p50, p99, max, count}) covers the time since the
    previous health read. Without figures (an app made without a worker's), nothing to report.
    """
    if stats is None:
        empty = {"p50": 0.0, "p99": 0.0, "max": 0.0, "count": 0}
        return {"forwarded_packets": 0, "forward_latency_us": empty}
    return {
        "forwarded_packets": stats.forwarded,
        "forward_latency_us": stats.latency_since_last_read(),
        "forward_latency_histogram": [[i, c] for i, c in enumerate(stats.histogram) if c],
    }


def _guarded(handler: Handler) -> Handler:
    """Maps refusals to JSON errors; an unexpected failure is logged and answered 500."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except WireError as exc:
            return error_response(exc.status, exc.code, exc.message)
        except Exception:
            log.exception("control request %s failed", request.url.path)
            return error_response(500, "internal", "the media node could not handle the request")

    return run


async def _room(call: Awaitable[T]) -> T:
    """A room call; the room raises ValueError for an SDP it cannot take."""
    try:
        return await call
    except ValueError as exc:
        raise WireError(400, "invalid_input", str(exc) or "the media node refused the SDP") from exc


async def _body(request: Request) -> dict[str, Any]:
    return parse_object(await read_body(request))


def _text(body: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""  # a missing token is an authentication failure, not a malformed request
    if not isinstance(value, str):
        raise WireError(400, "invalid_input", f"'{name}' must be a string")
    if not value:
        raise WireError(400, "invalid_input", f"'{name}' must not be empty")
    return value


async def _verify(gate: TokenGate, token: str) -> MediaClaims:
    try:
        return await gate.verify(token)
    except Unauthenticated as exc:
        raise WireError(401, "unauthenticated", exc.message) from exc


def _refuse_new_sessions_while_draining(worker: WorkerState) -> None:
    if worker.draining:
        raise WireError(503, "draining", "this media node is draining; ask signaling again")


async def _http_error(_request: Request, exc: HTTPException) -> Response:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
    return error_response(exc.status_code, code, str(exc.detail))


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
