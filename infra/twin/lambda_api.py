"""Lambda's Invoke API in the twin: `POST /2015-03-31/functions/{FunctionName}/invocations`.

This is what boto3's `lambda` client calls for `invoke(...)` when the handlers' environment
points `AWS_ENDPOINT_URL_LAMBDA` at the twin, so a handler that invokes another function
synchronously (the outbox consumer invoking its slices) runs unchanged. It answers as Lambda
does, so the caller's error handling is exercised too:

- 200 with the function's JSON result, `X-Amz-Executed-Version: $LATEST`;
- a failed invocation (the handler raised, timed out, could not be imported, returned
  something that is not JSON) is still 200, with `X-Amz-Function-Error: Unhandled` and
  `{"errorMessage": ..., "errorType": ...}` as the payload; boto3 reports it as
  `FunctionError`;
- an unknown function (or a qualifier other than `$LATEST`) is 404
  `ResourceNotFoundException`;
- only `RequestResponse` invocations: `Event` or `DryRun` is a 400
  `InvalidParameterValueException` saying so; a body that is not JSON is 400
  `InvalidRequestContentException`; over 6 MB is 413 `RequestTooLargeException`;
- all threads for these calls busy: 429 `TooManyRequestsException`, which SDKs retry (see
  `LocalLambdaRuntime.invoke_through_api`, which keeps a waiting caller from deadlocking).

A function is named by its logical id ("OutboxSliceFunction", what `invoke_env_var` gives the
handlers in the twin), by its twin function name ("townhall-OutboxSliceFunction"), or by an
ARN or partial ARN of either. Requests must carry a SigV4 `Authorization` header (403
otherwise); the signature is not checked.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any
from urllib.parse import parse_qs, unquote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from infra.twin.lambda_runtime import (
    FUNCTION_NAME_PREFIX,
    LambdaInvocationError,
    LambdaThrottled,
    LocalLambdaRuntime,
)
from infra.twin.request_body import read_limited

log = logging.getLogger(__name__)

API_VERSION_PREFIX = "/2015-03-31/functions/"
_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")
# Lambda's limit on a synchronous invocation's request payload.
MAX_REQUEST_BYTES = 6 * 1024 * 1024
# arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>], or <account>:function:<name>.
_ARN = re.compile(r"^(?:arn:aws[a-z-]*:lambda:[a-z0-9-]+:)?\d{12}:function:([^:]+)(?::([^:]+))?$")


def is_lambda_path(path: str) -> bool:
    return path.startswith(API_VERSION_PREFIX)


def _error(status: int, error_type: str, message: str, **extra: Any) -> Response:
    body = {"Type": "User", "message": message, **extra}
    return Response(
        json.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={"x-amzn-ErrorType": error_type, "x-amzn-RequestId": str(uuid.uuid4())},
    )


class LambdaApi:
    """ASGI app for `/2015-03-31/functions/...` (http scopes only)."""

    def __init__(self, runtime: LocalLambdaRuntime) -> None:
        self.runtime = runtime
        self._names: dict[str, str] = {}
        for logical_id in runtime.logical_ids():
            self._names[logical_id] = logical_id
            self._names[FUNCTION_NAME_PREFIX + logical_id] = logical_id

    def resolve(self, name: str, qualifier: str | None) -> str | None:
        """The logical id a FunctionName (and Qualifier) names, or None."""
        match = _ARN.match(name)
        if match is not None:
            name, in_arn = match.group(1), match.group(2)
            if in_arn is not None:
                if qualifier is not None and qualifier != in_arn:
                    return None
                qualifier = in_arn
        if qualifier not in {None, "$LATEST"}:
            return None
        return self._names.get(name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self._respond(request)
        await response(scope, receive, send)

    async def _respond(self, request: Request) -> Response:
        raw_path = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
        match = _INVOKE_PATH.match(raw_path)
        if match is None or request.method != "POST":
            return _error(404, "UnknownOperationException", "the twin serves only Invoke")
        if not request.headers.get("authorization", "").startswith("AWS4-HMAC-SHA256"):
            return _error(
                403, "MissingAuthenticationTokenException", "Missing Authentication Token"
            )
        name = unquote(match.group(1))
        query = parse_qs(request.scope.get("query_string", b"").decode("latin-1"))
        qualifier = query.get("Qualifier", [None])[0]
        logical_id = self.resolve(name, qualifier)
        if logical_id is None:
            return _error(404, "ResourceNotFoundException", f"Function not found: {name}")
        invocation_type = request.headers.get("x-amz-invocation-type", "RequestResponse")
        if invocation_type != "RequestResponse":
            return _error(
                400,
                "InvalidParameterValueException",
                f"the twin's Invoke API takes only InvocationType RequestResponse, "
                f"not {invocation_type!r}",
            )
        try:
            body = await read_limited(request, MAX_REQUEST_BYTES)
        except ClientDisconnect:
            return Response(status_code=400)
        if body is None:
            return _error(413, "RequestTooLargeException", "Request must be smaller than 6 MB")
        try:
            event = json.loads(body) if body.strip() else {}
        except ValueError as exc:
            return _error(
                400,
                "InvalidRequestContentException",
                f"Could not parse request body into json: {exc}",
            )
        request_id = str(uuid.uuid4())
        headers = {"X-Amz-Executed-Version": "$LATEST", "x-amzn-RequestId": request_id}
        try:
            result = await self.runtime.invoke_through_api(logical_id, event)
        except LambdaThrottled:
            return _error(
                429,
                "TooManyRequestsException",
                "Rate Exceeded.",
                Reason="ConcurrentInvocationLimitExceeded",
            )
        except LambdaInvocationError as exc:
            payload = {"errorMessage": exc.error_message, "errorType": exc.error_type}
            return Response(
                json.dumps(payload),
                status_code=200,
                media_type="application/json",
                headers={**headers, "X-Amz-Function-Error": "Unhandled"},
            )
        return Response(
            json.dumps(result), status_code=200, media_type="application/json", headers=headers
        )
