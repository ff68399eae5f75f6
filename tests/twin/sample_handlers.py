"""Recording Lambda handlers that stand in for Townhall's real ones in the twin's own tests.

Each handler records the event it got (see `RECORDER`) and answers according to what the
event asks for, so one test can drive any behaviour through the twin:

- authorizer: the `token` query parameter picks the answer ("allow", "deny", "unauthorized",
  "crash", "malformed", "bad-context", "connect-403", "connect-crash");
- $connect: allows, except for the tokens "connect-403" and "connect-crash";
- signaling: the message's JSON may ask it to "crash", "sleep" (seconds), "post" a list of
  strings to its own connection through the management API, or stay silent ("no_reply");
  otherwise it answers {"route": ..., "echo": ...};
- HTTP API: the path picks the answer (see `http_api`).

Handlers must be importable by dotted path, so the twin runs them as
"tests.twin.sample_handlers.<name>".
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from typing import Any

import boto3

MODULE = "tests.twin.sample_handlers"

# Function logical id -> handler path: hand this to TwinOptions(handler_overrides=...).
OVERRIDES = {
    "HttpApiFunction": f"{MODULE}.http_api",
    "WsAuthorizerFunction": f"{MODULE}.ws_authorizer",
    "WsConnectFunction": f"{MODULE}.ws_connect",
    "WsDisconnectFunction": f"{MODULE}.ws_disconnect",
    "WsSignalingFunction": f"{MODULE}.ws_signaling",
}

AUTHORIZER_CONTEXT = {"meetingId": "m-1", "role": "host", "seats": 3, "admitted": True}


class Recorder:
    """Events received, by handler name; safe to use from the Lambda pool threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[tuple[str, dict[str, Any], Any]] = []

    def record(self, handler: str, event: dict[str, Any], context: Any) -> None:
        with self._lock:
            self._events.append((handler, event, context))

    def events(self, handler: str, connection_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            found = [e for h, e, _ in self._events if h == handler]
        if connection_id is not None:
            found = [e for e in found if e["requestContext"].get("connectionId") == connection_id]
        return found

    def contexts(self, handler: str) -> list[Any]:
        with self._lock:
            return [c for h, _, c in self._events if h == handler]

    def by_token(self, handler: str, token: str) -> list[dict[str, Any]]:
        """$connect-time events (authorizer, $connect) whose query carried this token."""
        return [
            e
            for e in self.events(handler)
            if (e.get("queryStringParameters") or {}).get("token") == token
        ]


RECORDER = Recorder()


# -- WebSocket API ---------------------------------------------------------------------------


def _policy(effect: str, resource: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
    }


def ws_authorizer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    RECORDER.record("ws_authorizer", event, context)
    token = event["queryStringParameters"]["token"]
    if token == "unauthorized":
        raise Exception("Unauthorized")
    if token == "crash":
        raise RuntimeError("the authorizer has a bug")
    if token == "malformed":
        return {"allowed": "yes"}
    principal = f"user-{token}"
    if token == "deny":
        return {"principalId": principal, "policyDocument": _policy("Deny", event["methodArn"])}
    context_values: dict[str, Any] = dict(AUTHORIZER_CONTEXT)
    if token == "bad-context":
        context_values["nested"] = {"not": "allowed"}
    # Allow with a wildcard resource, as Powertools' allow_all_routes() writes it.
    api_arn = event["methodArn"].rsplit("/", 1)[0]
    return {
        "principalId": principal,
        "policyDocument": _policy("Allow", f"{api_arn}/*"),
        "context": context_values,
    }


def ws_connect(event: dict[str, Any], context: Any) -> dict[str, Any]:
    RECORDER.record("ws_connect", event, context)
    token = event["queryStringParameters"]["token"]
    if token == "connect-403":
        return {"statusCode": 403, "body": "not in this meeting"}
    if token == "connect-crash":
        raise RuntimeError("$connect has a bug")
    return {"statusCode": 200}


def ws_disconnect(event: dict[str, Any], context: Any) -> dict[str, Any]:
    RECORDER.record("ws_disconnect", event, context)
    return {"statusCode": 200}


_clients: dict[str, Any] = {}


def management_client() -> Any:
    """A management API client for the endpoint the twin names, as the real notifier does."""
    endpoint = os.environ["WS_MANAGEMENT_ENDPOINT"]
    if endpoint not in _clients:
        _clients[endpoint] = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint)
    return _clients[endpoint]


def ws_signaling(event: dict[str, Any], context: Any) -> dict[str, Any] | None:
    RECORDER.record("ws_signaling", event, context)
    route = event["requestContext"]["routeKey"]
    try:
        message = json.loads(event["body"])
    except ValueError:
        message = None
    if not isinstance(message, dict):
        message = {}
    if message.get("crash"):
        raise RuntimeError("signaling has a bug")
    if "sleep" in message:
        time.sleep(float(message["sleep"]))
    posted = 0
    for text in message.get("post", []):
        management_client().post_to_connection(
            ConnectionId=event["requestContext"]["connectionId"], Data=text.encode()
        )
        posted += 1
    if message.get("no_reply"):
        return None
    reply = {"route": route, "echo": event["body"], "posted": posted}
    return {"statusCode": 200, "body": json.dumps(reply)}


# -- HTTP API --------------------------------------------------------------------------------


def http_api(event: dict[str, Any], context: Any) -> Any:
    RECORDER.record("http_api", event, context)
    path = event["rawPath"]
    if path == "/api/crash":
        raise RuntimeError("the API has a bug")
    if path == "/api/sleep":
        time.sleep(float(event["queryStringParameters"]["seconds"]))
    if path == "/api/no-status":
        return {"hello": "world"}
    if path == "/api/bad-status":
        return {"statusCode": "teapot"}
    if path == "/api/binary":
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/octet-stream"},
            "body": base64.b64encode(bytes(range(256))).decode(),
            "isBase64Encoded": True,
        }
    if path == "/api/put-meeting":
        # Reaches moto through the environment alone, as a real handler would.
        table = boto3.resource("dynamodb").Table(os.environ["MEETINGS_TABLE"])
        table.put_item(Item={"pk": "meeting#http", "sk": "meta", "title": "from a handler"})
        return {"statusCode": 204}
    return {
        "statusCode": 201,
        "headers": {"content-type": "application/json", "x-sample": "yes"},
        "multiValueHeaders": {"x-multi": ["a", "b"]},
        "cookies": ["session=abc; Path=/; HttpOnly", "theme=dark"],
        "body": json.dumps({"rawPath": path, "requestId": event["requestContext"]["requestId"]}),
    }
