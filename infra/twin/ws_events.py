"""The events API Gateway's WebSocket API sends to Lambda, built as AWS builds them.

Four shapes: the REQUEST authorizer event and the `$connect`, MESSAGE and `$disconnect` events
(docs/twin.md lists their keys; DESIGN.md section 4 is the source). Every event of one
connection shares the connection's facts (`ConnectionFacts`); each event gets its own request
id and time.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.twin.fake_aws import ACCOUNT_ID, REGION, gateway_request_time, new_gateway_id, now_ms

Pairs = Sequence[tuple[str, str]]


@dataclass
class ConnectionFacts:
    """What API Gateway knows about a connection, repeated in each of its events."""

    connection_id: str
    connected_at_ms: int
    api_id: str
    stage: str
    domain_name: str
    source_ip: str
    user_agent: str
    # The upgrade request's headers (as sent, case kept) and query parameters (decoded).
    headers: Pairs = ()
    query: Pairs = ()
    # principalId plus the authorizer's context, once the authorizer allowed the connection.
    authorizer: dict[str, Any] | None = field(default=None)

    @property
    def connect_method_arn(self) -> str:
        return f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{self.api_id}/{self.stage}/$connect"


@dataclass(frozen=True)
class RequestStamp:
    """The ids and time of one event; the authorizer and $connect events share one."""

    request_id: str
    epoch_ms: int

    @classmethod
    def new(cls) -> RequestStamp:
        return cls(request_id=new_gateway_id(), epoch_ms=now_ms())


def _single_and_multi(pairs: Pairs) -> tuple[dict[str, str], dict[str, list[str]]]:
    """REST-style maps: the last value of each name, and every value of each name."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return single, multi


def _request_context(
    facts: ConnectionFacts, stamp: RequestStamp, route_key: str, event_type: str
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": stamp.request_id,
        "requestTime": gateway_request_time(stamp.epoch_ms),
        "messageDirection": "IN",
        "stage": facts.stage,
        "connectedAt": facts.connected_at_ms,
        "requestTimeEpoch": stamp.epoch_ms,
        "identity": {"sourceIp": facts.source_ip, "userAgent": facts.user_agent},
        "requestId": stamp.request_id,
        "domainName": facts.domain_name,
        "connectionId": facts.connection_id,
        "apiId": facts.api_id,
    }
    if facts.authorizer is not None:
        context["authorizer"] = dict(facts.authorizer)
    return context


def authorizer_event(facts: ConnectionFacts, stamp: RequestStamp) -> dict[str, Any]:
    """The REQUEST authorizer event for `$connect` (WebSocket APIs use the v1 shape)."""
    headers, multi_headers = _single_and_multi(facts.headers)
    query, multi_query = _single_and_multi(facts.query)
    return {
        "type": "REQUEST",
        "methodArn": facts.connect_method_arn,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "stageVariables": {},
        "requestContext": _request_context(facts, stamp, "$connect", "CONNECT"),
    }


def connect_event(facts: ConnectionFacts, stamp: RequestStamp) -> dict[str, Any]:
    """The `$connect` event: the upgrade request's headers and query string, and no body."""
    headers, multi_headers = _single_and_multi(facts.headers)
    event: dict[str, Any] = {
        "headers": headers,
        "multiValueHeaders": multi_headers,
    }
    if facts.query:  # AWS leaves both keys out when there is no query string
        query, multi_query = _single_and_multi(facts.query)
        event["queryStringParameters"] = query
        event["multiValueQueryStringParameters"] = multi_query
    event["requestContext"] = _request_context(facts, stamp, "$connect", "CONNECT")
    event["isBase64Encoded"] = False
    return event


def message_event(
    facts: ConnectionFacts, stamp: RequestStamp, route_key: str, message: str | bytes
) -> dict[str, Any]:
    """A MESSAGE event: a text message as is, a binary one in base64."""
    context = _request_context(facts, stamp, route_key, "MESSAGE")
    context["messageId"] = new_gateway_id()
    if isinstance(message, bytes):
        body, is_base64 = base64.b64encode(message).decode("ascii"), True
    else:
        body, is_base64 = message, False
    return {"requestContext": context, "body": body, "isBase64Encoded": is_base64}


def disconnect_event(
    facts: ConnectionFacts, stamp: RequestStamp, status_code: int, reason: str
) -> dict[str, Any]:
    """The `$disconnect` event. AWS sends a fixed, mostly empty header set here."""
    headers = [
        ("Host", facts.domain_name),
        ("x-api-key", ""),
        ("X-Forwarded-For", ""),
        ("x-restapi", ""),
    ]
    single, multi = _single_and_multi(headers)
    context = _request_context(facts, stamp, "$disconnect", "DISCONNECT")
    context["disconnectStatusCode"] = status_code
    context["disconnectReason"] = reason
    return {
        "headers": single,
        "multiValueHeaders": multi,
        "requestContext": context,
        "isBase64Encoded": False,
    }
