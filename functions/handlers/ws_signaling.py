"""Every signaling action route and `$default`: parse the envelope, run the action, reply.

The reply goes back as the route response (the routes are two-way), so a request costs no
extra @connections call. Bad input of any kind gets an error reply and changes nothing; the
connection stays open, as it would on API Gateway.
"""

from __future__ import annotations

import base64
from typing import Any

from townhall import runtime
from townhall.auth.claims import JoinClaims
from townhall.errors import DomainError
from townhall.observability import MetricUnit, logger, metrics
from townhall.signaling import protocol
from townhall.signaling.context import Caller


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request_context = event["requestContext"]
    text: str | None = None
    try:
        text = _text(event)
        request = protocol.parse_request(text)
    except DomainError as exc:
        action, request_id = protocol.peek_request(text)
        metrics.add_metric(name="SignalingRefused", unit=MetricUnit.Count, value=1)
        return _answer(protocol.error(action, request_id, exc.code, exc.message))
    caller = Caller(
        JoinClaims.from_authorizer_context(request_context["authorizer"]),
        request_context["connectionId"],
    )
    try:
        data = runtime.signaling_for_event(event).handle(caller, request)
    except DomainError as exc:
        logger.info("action refused", action=request.action, code=exc.code)
        metrics.add_metric(name="SignalingRefused", unit=MetricUnit.Count, value=1)
        return _answer(protocol.error(request.action, request.request_id, exc.code, exc.message))
    metrics.add_metric(name="SignalingActions", unit=MetricUnit.Count, value=1)
    return _answer(protocol.reply(request, data))


def _text(event: dict[str, Any]) -> str | None:
    """The message as text. A binary frame arrives base64-encoded; it must hold UTF-8 JSON."""
    body = event.get("body")
    if body is None or not event.get("isBase64Encoded"):
        return body
    try:
        raw = base64.b64decode(body, validate=True)
    except ValueError:
        raw = b""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise protocol.ProtocolError(
            "malformed_json", "a binary message must hold UTF-8 JSON text"
        ) from None


def _answer(body: str) -> dict[str, Any]:
    return {"statusCode": 200, "body": body}
