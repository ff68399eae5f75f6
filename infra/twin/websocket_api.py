"""The WebSocket API emulator: API Gateway's `/ws` stage in front of Townhall's Lambdas.

One connection's life, as AWS runs it:

1. Handshake. The authorizer's identity source missing (for Townhall the
   `Sec-WebSocket-Protocol` header that carries the token; `identity_source` to emulate
   another API): 401 without calling the authorizer. Otherwise the REQUEST authorizer decides (401, 403, 500 or
   allow); then `$connect` runs and a non-2xx answer rejects the handshake with its status.
   The client waits for both, as it does in AWS.
2. Messages. Each message is routed on `$request.body.action` and is its own invocation of
   the signaling function, started as it arrives (several may run at once, as in AWS; a
   bounded number per connection). A two-way route sends the handler's `body` back.
   A failed invocation sends API Gateway's "Internal server error" message; the connection
   stays open.
3. Close: by the client, by the management API (DELETE), by the idle timeout or the maximum
   duration (1001 "Going away"), or for a message over 128 KiB (1009). Then `$disconnect`
   runs, once every message invocation of the connection has finished (AWS gives no such
   ordering; the twin does, to keep tests deterministic).

`lose_abrupt_disconnects=True` skips `$disconnect` for sockets that dropped without a close
frame. AWS delivers `$disconnect` only best-effort, and stale connection records (cleaned
up when a post answers 410) are a state the backend must handle; this makes it reproducible.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from infra.twin import authorizer_policy
from infra.twin.connections import ConnectionRegistry, LiveConnection
from infra.twin.fake_aws import new_api_id, new_gateway_id, now_ms
from infra.twin.lambda_runtime import LambdaInvocationError, LocalLambdaRuntime
from infra.twin.uvicorn_ws import ABNORMAL_CLOSURE, MESSAGE_TOO_BIG_REASON
from infra.twin.ws_events import (
    ConnectionFacts,
    RequestStamp,
    authorizer_event,
    connect_event,
    disconnect_event,
    message_event,
)
from townhall import functions, routes

log = logging.getLogger(__name__)

DEFAULT_ROUTE = "$default"
GOING_AWAY = 1001

# The reason `$disconnect` reports when the closing side gave none.
_DEFAULT_DISCONNECT_REASONS = {
    1000: "Connection Closed Normally",
    1001: "Going away",
    1005: "Client-side close frame status not set",
    ABNORMAL_CLOSURE: "Connection was closed abnormally",
    1009: MESSAGE_TOO_BIG_REASON,
}


@dataclass(frozen=True)
class WebSocketLimits:
    idle_timeout_seconds: float = 10 * 60
    max_connection_seconds: float = 2 * 60 * 60
    # Message invocations one connection may have running at once; past it, the twin stops
    # reading that socket until one finishes (TCP back-pressure, no message is dropped).
    max_in_flight_per_connection: int = 10


def select_route(message: str | bytes) -> str:
    """`$request.body.action`: a JSON object naming a known action, else `$default`."""
    if isinstance(message, bytes):
        return DEFAULT_ROUTE
    try:
        body = json.loads(message)
    except (ValueError, RecursionError):
        # Not JSON, or nested past what the parser takes: API Gateway cannot evaluate the
        # selection expression either, and sends the message to `$default`.
        return DEFAULT_ROUTE
    action = body.get("action") if isinstance(body, dict) else None
    if isinstance(action, str) and action in routes.ACTIONS:
        return action
    return DEFAULT_ROUTE


def canonical_header_name(name: str) -> str:
    """Canonical case: sec-websocket-key -> Sec-WebSocket-Key, user-agent -> User-Agent."""
    return "-".join(
        "WebSocket" if part.lower() == "websocket" else part.capitalize()
        for part in name.split("-")
    )


def _json_response(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json")


_HANDSHAKE_REJECTIONS = {
    401: {"message": "Unauthorized"},
    403: {"message": "Forbidden"},
    500: {"message": "Internal server error"},
}


class WebSocketApi:
    """ASGI app for the WebSocket stage. Mount it at `/<stage>` for `websocket` scopes."""

    def __init__(
        self,
        runtime: LocalLambdaRuntime,
        registry: ConnectionRegistry,
        *,
        stage: str = routes.STAGE,
        limits: WebSocketLimits | None = None,
        lose_abrupt_disconnects: bool = False,
        identity_source: str = routes.IDENTITY_SOURCE,
    ) -> None:
        self.runtime = runtime
        self.identity_source = identity_source
        self.registry = registry
        self.stage = stage
        self.api_id = new_api_id()
        self.limits = limits or WebSocketLimits()
        self.lose_abrupt_disconnects = lose_abrupt_disconnects

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        facts = self._facts(websocket)
        connection = await self._handshake(websocket, facts)
        if connection is None:
            return
        self.registry.add(connection)
        log.info("connected %s", facts.connection_id)
        expiry = asyncio.create_task(self._expire(connection))
        try:
            status_code, reason, in_flight = await self._pump_messages(connection)
        finally:
            self.registry.remove(facts.connection_id)
            expiry.cancel()
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)
        log.info("disconnected %s (%d %s)", facts.connection_id, status_code, reason)
        if status_code == ABNORMAL_CLOSURE and self.lose_abrupt_disconnects:
            log.info("lose_abrupt_disconnects: no $disconnect for %s", facts.connection_id)
            return
        await self._invoke_quietly(
            functions.WS_DISCONNECT.logical_id,
            disconnect_event(facts, RequestStamp.new(), status_code, reason),
        )

    # -- 1. handshake ---------------------------------------------------------------------

    def _facts(self, websocket: WebSocket) -> ConnectionFacts:
        scope = websocket.scope
        # uvicorn hands the names over lower-cased; write them as browsers send them (and as
        # AWS passes them on): "Sec-WebSocket-Key", "User-Agent".
        headers = [
            (canonical_header_name(name.decode("latin-1")), value.decode("latin-1"))
            for name, value in scope["headers"]
        ]
        client_host, _client_port = scope.get("client") or ("127.0.0.1", 0)
        server_host, server_port = scope.get("server") or ("127.0.0.1", 0)
        lower = {name.lower(): value for name, value in headers}
        # API Gateway adds its tracing and forwarding headers to what the client sent.
        headers += [
            (name, value)
            for name, value in (
                ("X-Amzn-Trace-Id", f"Root=1-{now_ms() // 1000:08x}-{os.urandom(12).hex()}"),
                ("X-Forwarded-For", client_host),
                ("X-Forwarded-Port", str(server_port)),
                ("X-Forwarded-Proto", "https" if scope.get("scheme") == "wss" else "http"),
            )
            if name.lower() not in lower
        ]
        query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        return ConnectionFacts(
            connection_id=new_gateway_id(),
            connected_at_ms=now_ms(),
            api_id=self.api_id,
            stage=self.stage,
            domain_name=lower.get("host", f"{server_host}:{server_port}"),
            source_ip=client_host,
            user_agent=lower.get("user-agent", ""),
            headers=headers,
            query=query,
        )

    async def _handshake(
        self, websocket: WebSocket, facts: ConnectionFacts
    ) -> LiveConnection | None:
        """Authorize and run `$connect`; accept the socket, or reject it and return None."""
        stamp = RequestStamp.new()
        if not _identity_present(self.identity_source, facts):
            await self._reject(websocket, 401)
            return None

        decision = await self._authorize(facts, stamp)
        if not decision.allowed:
            await self._reject(websocket, decision.status)
            return None
        facts.authorizer = decision.authorizer

        try:
            answer = await self.runtime.invoke(
                functions.WS_CONNECT.logical_id, connect_event(facts, stamp)
            )
        except LambdaInvocationError:
            await self._reject(websocket, 500)
            return None
        status, subprotocol, body = _connect_answer(answer)
        if status is None:
            log.error("$connect returned an unusable answer: %r", answer)
            await self._reject(websocket, 500)
            return None
        if not 200 <= status < 300:
            await self._reject(websocket, status, body)
            return None
        await websocket.accept(subprotocol=subprotocol)
        return LiveConnection(facts=facts, websocket=websocket)

    async def _authorize(
        self, facts: ConnectionFacts, stamp: RequestStamp
    ) -> authorizer_policy.AuthorizerDecision:
        try:
            answer = await self.runtime.invoke(
                functions.WS_AUTHORIZER.logical_id, authorizer_event(facts, stamp)
            )
        except LambdaInvocationError as exc:
            # `raise Exception("Unauthorized")` is the documented way to answer 401; any
            # other failure is an authorizer configuration error.
            status = 401 if exc.error_message == "Unauthorized" else 500
            return authorizer_policy.AuthorizerDecision.reject(status)
        decision = authorizer_policy.judge(answer, facts.connect_method_arn)
        if decision.status == 500:
            log.error("authorizer answer rejected as malformed: %r", answer)
        return decision

    async def _reject(self, websocket: WebSocket, status: int, body: str | None = None) -> None:
        if body is not None:
            response = Response(body, status_code=status)
        else:
            response = _json_response(status, _HANDSHAKE_REJECTIONS.get(status, {"message": None}))
        await websocket.send_denial_response(response)

    # -- 2. messages ----------------------------------------------------------------------

    async def _pump_messages(
        self, connection: LiveConnection
    ) -> tuple[int, str, set[asyncio.Task[None]]]:
        """Dispatch messages until the socket closes; return its close code and reason."""
        in_flight: set[asyncio.Task[None]] = set()
        slots = asyncio.Semaphore(self.limits.max_in_flight_per_connection)
        while True:
            message = await connection.websocket.receive()
            if message["type"] == "websocket.disconnect":
                code = int(message.get("code") or 1005)
                reason = message.get("reason") or _DEFAULT_DISCONNECT_REASONS.get(code, "")
                return code, reason, in_flight
            if message["type"] != "websocket.receive":
                continue
            connection.touch()
            data: str | bytes = (
                message["text"] if message.get("text") is not None else message.get("bytes", b"")
            )
            await slots.acquire()
            task = asyncio.create_task(self._handle_message(connection, data))
            in_flight.add(task)

            def finished(done: asyncio.Task[None]) -> None:
                in_flight.discard(done)
                slots.release()

            task.add_done_callback(finished)

    async def _handle_message(self, connection: LiveConnection, data: str | bytes) -> None:
        route = select_route(data)
        stamp = RequestStamp.new()
        event = message_event(connection.facts, stamp, route, data)
        try:
            answer = await self.runtime.invoke(functions.WS_SIGNALING.logical_id, event)
        except LambdaInvocationError:
            await self._send_integration_error(connection, stamp)
            return
        if route not in routes.TWO_WAY_ROUTES or not isinstance(answer, dict):
            return
        body = answer.get("body")
        if body is None:
            return
        if not isinstance(body, str):
            log.error("route %s returned a body that is not a string: %r", route, body)
            await self._send_integration_error(connection, stamp)
            return
        if answer.get("isBase64Encoded"):
            await connection.send(base64.b64decode(body))
        else:
            await connection.send(body)

    async def _send_integration_error(
        self, connection: LiveConnection, stamp: RequestStamp
    ) -> None:
        error = {
            "message": "Internal server error",
            "connectionId": connection.connection_id,
            "requestId": stamp.request_id,
        }
        await connection.send(json.dumps(error))

    # -- 3. close ---------------------------------------------------------------------------

    async def _expire(self, connection: LiveConnection) -> None:
        """Close the connection at its idle timeout or its maximum duration."""
        limits = self.limits
        while True:
            deadline = min(
                connection.last_active_monotonic + limits.idle_timeout_seconds,
                connection.opened_monotonic + limits.max_connection_seconds,
            )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.info("closing %s: idle timeout or maximum duration", connection.connection_id)
                await connection.close(GOING_AWAY, "Going away")
                return
            await asyncio.sleep(remaining)

    async def _invoke_quietly(self, logical_id: str, event: dict[str, Any]) -> None:
        # The runtime has already logged the failure; nobody is left to tell.
        with contextlib.suppress(LambdaInvocationError):
            await self.runtime.invoke(logical_id, event)


def _identity_present(source: str, facts: ConnectionFacts) -> bool:
    """API Gateway's check of the identity source before an authorizer runs: the named
    header or query parameter must be there and not empty."""
    kind, _, name = source.removeprefix("route.request.").partition(".")
    if kind == "header":
        return any(key.lower() == name.lower() and value for key, value in facts.headers)
    if kind == "querystring":
        return bool(dict(facts.query).get(name))
    raise ValueError(f"unsupported identity source {source!r}")


def _connect_answer(answer: Any) -> tuple[int | None, str | None, str | None]:
    """(status, subprotocol, body) from `$connect`'s answer; status None if unusable.

    A handler that returns nothing is taken as 200, as API Gateway does. A
    `Sec-WebSocket-Protocol` response header selects the subprotocol.
    """
    if answer is None:
        return 200, None, None
    if not isinstance(answer, dict):
        return None, None, None
    status = answer.get("statusCode", 200)
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        return None, None, None
    headers = answer.get("headers") or {}
    subprotocol = None
    if isinstance(headers, dict):
        for name, value in headers.items():
            if name.lower() == "sec-websocket-protocol" and isinstance(value, str):
                subprotocol = value
    body = answer.get("body")
    return status, subprotocol, body if isinstance(body, str) else None
