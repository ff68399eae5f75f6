"""The WebSocket API's management API: `POST`, `GET` and `DELETE /<stage>/@connections/{id}`.

This is what boto3's `apigatewaymanagementapi` client talks to, with
`endpoint_url="http://127.0.0.1:<port>/<stage>"`. moto's version of it is a stub that never
delivers and never answers 410; this one acts on the live sockets:

- POST writes the body to the socket as one message (a text frame when it is UTF-8, else a
  binary frame) before answering 200, so a caller who posts A then B is seen to send A first.
  Over 128 KiB: 413. Unknown or closed connection: 410 with `x-amzn-ErrorType: GoneException`,
  which is what makes boto3 raise `client.exceptions.GoneException`.
- GET describes the connection: connectedAt, identity, lastActiveAt.
- DELETE closes the socket with 1000 (what AWS sends; `$disconnect` then reports 1000
  "Connection Closed Normally") and answers 204.

Requests must carry a SigV4 `Authorization` header (403 otherwise); the signature itself is
not checked.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import unquote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from infra.twin.connections import ConnectionRegistry
from infra.twin.fake_aws import iso8601
from infra.twin.request_body import read_limited
from townhall import routes

log = logging.getLogger(__name__)

CONNECTIONS_SEGMENT = "@connections"
# What Response(status_code=200) sends: an empty body and its length.
_EMPTY_OK = [(b"content-length", b"0")]


def _error(status: int, error_type: str, message: str | None) -> Response:
    return Response(
        json.dumps({"message": message}),
        status_code=status,
        media_type="application/json",
        headers={"x-amzn-ErrorType": error_type},
    )


def _gone() -> Response:
    return _error(410, "GoneException", None)


def is_management_path(raw_path: bytes, stage: str = routes.STAGE) -> bool:
    segments = raw_path.decode("latin-1").split("/")
    return (
        len(segments) >= 3
        and segments[0] == ""
        and unquote(segments[1]) == stage
        and unquote(segments[2]) == CONNECTIONS_SEGMENT
    )


def connection_id_from(raw_path: bytes) -> str | None:
    """The decoded id in /<stage>/@connections/<id>; split before decoding, since an encoded
    '/' (%2F) belongs to the id."""
    segments = raw_path.decode("latin-1").split("/")
    if len(segments) != 4 or not segments[3]:
        return None
    return unquote(segments[3])


class ManagementApi:
    """ASGI app for `/<stage>/@connections/...` (http scopes only)."""

    def __init__(self, registry: ConnectionRegistry) -> None:
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "POST":
            # The hot path of every fan-out (one call per recipient): plain ASGI messages,
            # no Request/Response objects, same answers as `_respond`.
            await self._post_fast(scope, receive, send)
            return
        request = Request(scope, receive)
        response = await self._respond(request)
        await response(scope, receive, send)

    async def _post_fast(self, scope: Scope, receive: Receive, send: Send) -> None:
        authorized = any(
            name == b"authorization" and value.startswith(b"AWS4-HMAC-SHA256")
            for name, value in scope["headers"]
        )
        connection_id = connection_id_from(scope.get("raw_path") or scope["path"].encode())
        if not authorized or connection_id is None:
            response = _error(
                403, "MissingAuthenticationTokenException", "Missing Authentication Token"
            )
            await response(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the caller is gone; nothing to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            # An oversized body is read to its end and dropped (the client gets the 413).
            if size <= routes.MAX_MESSAGE_BYTES:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        if size > routes.MAX_MESSAGE_BYTES:
            response = _error(413, "PayloadTooLargeException", "Request Entity Too Large")
        else:
            response = await self._post(connection_id, b"".join(chunks))
        if response.status_code == 200:
            await send({"type": "http.response.start", "status": 200, "headers": _EMPTY_OK})
            await send({"type": "http.response.body", "body": b""})
        else:
            await response(scope, receive, send)

    async def _respond(self, request: Request) -> Response:
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith("AWS4-HMAC-SHA256"):
            return _error(
                403, "MissingAuthenticationTokenException", "Missing Authentication Token"
            )
        connection_id = connection_id_from(
            request.scope.get("raw_path") or request.url.path.encode()
        )
        if connection_id is None or request.method not in {"POST", "GET", "DELETE"}:
            # What API Gateway says about any path or method it has no route for.
            return _error(
                403, "MissingAuthenticationTokenException", "Missing Authentication Token"
            )

        if request.method == "POST":
            try:
                data = await read_limited(request, routes.MAX_MESSAGE_BYTES)
            except ClientDisconnect:
                return Response(status_code=400)
            if data is None:
                return _error(413, "PayloadTooLargeException", "Request Entity Too Large")
            return await self._post(connection_id, data)
        if request.method == "GET":
            return self._get(connection_id)
        return await self._delete(connection_id)

    async def _post(self, connection_id: str, data: bytes) -> Response:
        connection = self.registry.get(connection_id)
        if connection is None:
            return _gone()
        try:
            message: str | bytes = data.decode("utf-8")
        except UnicodeDecodeError:
            message = data
        if not await connection.send(message):
            return _gone()
        return Response(status_code=200)

    def _get(self, connection_id: str) -> Response:
        connection = self.registry.get(connection_id)
        if connection is None:
            return _gone()
        facts = connection.facts
        body: dict[str, Any] = {
            "connectedAt": iso8601(facts.connected_at_ms),
            "identity": {"sourceIp": facts.source_ip, "userAgent": facts.user_agent},
            "lastActiveAt": iso8601(connection.last_active_ms),
        }
        return Response(json.dumps(body), status_code=200, media_type="application/json")

    async def _delete(self, connection_id: str) -> Response:
        connection = self.registry.get(connection_id)
        if connection is None:
            return _gone()
        await connection.close(1000, "")
        return Response(status_code=204)
