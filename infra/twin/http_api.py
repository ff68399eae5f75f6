"""The HTTP API emulator: API Gateway's HTTP API (payload format 2.0) in front of one Lambda.

In AWS, CloudFront sends `/api/*` to an HTTP API whose only route is `ANY /api/{proxy+}`,
integrated with the HTTP_API function (FastAPI behind Mangum). This module turns an ASGI
request into the 2.0 event AWS would send and the function's answer back into a response:

- event: version, routeKey, rawPath, rawQueryString, cookies (the Cookie header, split; it is
  not repeated in headers), headers (lower-case, repeated ones comma-joined, plus the
  x-forwarded-* and x-amzn-trace-id headers API Gateway adds), queryStringParameters (decoded,
  repeated ones comma-joined), requestContext, pathParameters.proxy, body and isBase64Encoded;
  keys with nothing to say (cookies, queryStringParameters, body) are left out, as AWS does;
- answer: statusCode, headers, multiValueHeaders, cookies (one set-cookie each), body and
  isBase64Encoded; an answer without statusCode is a JSON body with 200, as AWS infers it;
- limits and failures: a body over 10 MB is refused with 413; a failed invocation is a 500
  `{"message":"Internal Server Error"}`, a timed-out one a 503 `{"message":"Service
  Unavailable"}`.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from infra.twin.fake_aws import ACCOUNT_ID, gateway_request_time, new_api_id, new_gateway_id, now_ms
from infra.twin.lambda_runtime import LambdaInvocationError, LocalLambdaRuntime
from infra.twin.request_body import read_limited
from townhall import functions

log = logging.getLogger(__name__)

API_PREFIX = "/api/"
ROUTE_KEY = "ANY /api/{proxy+}"
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024

# Bodies API Gateway passes as text; everything else (and any body that is not UTF-8) is
# base64-encoded with isBase64Encoded true.
_TEXT_MEDIA_TYPES = ("application/json", "application/javascript", "application/xml")
# Response headers API Gateway sets itself rather than copying from the integration.
_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}


def _json_error(status: int, message: str) -> Response:
    return Response(
        json.dumps({"message": message}), status_code=status, media_type="application/json"
    )


def is_text_body(content_type: str | None) -> bool:
    if not content_type:
        return True  # no declared type: text if it decodes, see `_encode_body`
    media_type = content_type.split(";", 1)[0].strip().lower()
    return (
        media_type.startswith("text/")
        or media_type in _TEXT_MEDIA_TYPES
        or media_type.endswith("+json")
        or media_type.endswith("+xml")
    )


def _encode_body(body: bytes, content_type: str | None) -> tuple[str, bool]:
    if is_text_body(content_type):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


def _trace_id(epoch_ms: int) -> str:
    return f"Root=1-{epoch_ms // 1000:08x}-{os.urandom(12).hex()}"


def build_event(
    scope: Scope, body: bytes, *, api_id: str, route_key: str = ROUTE_KEY
) -> dict[str, Any]:
    """The payload format 2.0 event for an ASGI http request and its body."""
    epoch_ms = now_ms()
    request_id = new_gateway_id()
    raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    raw_query = scope.get("query_string", b"").decode("latin-1")
    client_host = (scope.get("client") or ("127.0.0.1", 0))[0]
    server_port = (scope.get("server") or ("127.0.0.1", 0))[1]

    headers: dict[str, str] = {}
    cookies: list[str] = []
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
        elif name in headers:
            headers[name] = f"{headers[name]},{value}"
        else:
            headers[name] = value
    forwarded_for = headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = f"{forwarded_for}, {client_host}" if forwarded_for else client_host
    headers.setdefault("x-forwarded-port", str(server_port))
    headers.setdefault("x-forwarded-proto", "https" if scope.get("scheme") == "https" else "http")
    headers["x-amzn-trace-id"] = _trace_id(epoch_ms)

    domain_name = headers.get("host", f"127.0.0.1:{server_port}")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": ACCOUNT_ID,
        "apiId": api_id,
        "domainName": domain_name,
        "domainPrefix": domain_name.split(".", 1)[0],
        "http": {
            "method": scope["method"],
            "path": raw_path,
            "protocol": f"HTTP/{scope.get('http_version', '1.1')}",
            "sourceIp": client_host,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": route_key,
        "stage": "$default",
        "time": gateway_request_time(epoch_ms),
        "timeEpoch": epoch_ms,
    }
    event["pathParameters"] = {"proxy": unquote(raw_path[len(API_PREFIX) :])}
    if body:
        event["body"], event["isBase64Encoded"] = _encode_body(body, headers.get("content-type"))
    else:
        event["isBase64Encoded"] = False
    return event


class MalformedResponse(ValueError):
    pass


def build_response(answer: Any, request_id: str) -> Response:
    """The HTTP response for the function's answer, as API Gateway maps format 2.0."""
    if not isinstance(answer, dict) or "statusCode" not in answer:
        # No statusCode: API Gateway takes the whole answer as a JSON body.
        text = answer if isinstance(answer, str) else json.dumps(answer)
        answer = {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": text}

    status = answer.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise MalformedResponse(f"statusCode {status!r}")

    body = answer.get("body")
    if body is None:
        content = b""
    elif isinstance(body, str):
        content = base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode("utf-8")
    else:
        raise MalformedResponse(f"body of type {type(body).__name__}")

    raw_headers: list[tuple[str, str]] = []
    for name, value in _dict(answer, "headers").items():
        raw_headers.append((name, _header_value(value)))
    for name, values in _dict(answer, "multiValueHeaders").items():
        if not isinstance(values, list):
            raise MalformedResponse(f"multiValueHeaders[{name!r}] is not a list")
        raw_headers += [(name, _header_value(v)) for v in values]
    cookies = answer.get("cookies") or []
    if not isinstance(cookies, list):
        raise MalformedResponse("cookies is not a list")
    raw_headers += [("set-cookie", _header_value(c)) for c in cookies]

    response = Response(content=content, status_code=status)
    for name, value in raw_headers:
        if name.lower() not in _HOP_BY_HOP:
            response.raw_headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    response.raw_headers.append((b"apigw-requestid", request_id.encode("ascii")))
    return response


def _dict(answer: dict[str, Any], key: str) -> dict[str, Any]:
    value = answer.get(key) or {}
    if not isinstance(value, dict):
        raise MalformedResponse(f"{key} is not an object")
    return value


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise MalformedResponse(f"header value {value!r}")


class HttpApi:
    """ASGI app for `/api/*` (http scopes)."""

    def __init__(self, runtime: LocalLambdaRuntime) -> None:
        self.runtime = runtime
        self.api_id = new_api_id()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._respond(Request(scope, receive))
        await response(scope, receive, send)

    async def _respond(self, request: Request) -> Response:
        if request.url.path == API_PREFIX:
            # `{proxy+}` needs at least one segment, so API Gateway has no route for this.
            return _json_error(404, "Not Found")
        try:
            body = await read_limited(request, MAX_PAYLOAD_BYTES)
        except ClientDisconnect:
            return Response(status_code=400)
        if body is None:
            return _json_error(413, "Request Entity Too Large")
        event = build_event(request.scope, body, api_id=self.api_id)
        request_id = event["requestContext"]["requestId"]
        try:
            answer = await self.runtime.invoke(functions.HTTP_API.logical_id, event)
        except LambdaInvocationError as exc:
            if exc.error_type == "Sandbox.Timedout":
                return _json_error(503, "Service Unavailable")
            return _json_error(500, "Internal Server Error")
        try:
            return build_response(answer, request_id)
        except MalformedResponse as exc:
            log.error("HTTP API function returned a malformed response: %s", exc)
            return _json_error(500, "Internal Server Error")
