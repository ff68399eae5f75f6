"""The WebSocket API emulator over real sockets: handshake, routes, limits and $disconnect."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from infra.twin import LocalTwin
from tests.twin.helpers import eventually, running_twin, with_timeout
from tests.twin.sample_handlers import AUTHORIZER_CONTEXT, RECORDER
from townhall import functions, routes

SIGNALING_TIMEOUT = 1
REQUEST_TIME = re.compile(r"^\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000$")
GATEWAY_ID = re.compile(r"^[A-Za-z0-9_-]{15}=$")


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTwin]:
    specs = tuple(
        with_timeout(spec, SIGNALING_TIMEOUT) if spec is functions.WS_SIGNALING else spec
        for spec in functions.ALL_FUNCTIONS
    )
    yield from running_twin(tmp_path_factory.mktemp("twin-ws"), functions=specs)


def new_token() -> str:
    """A token the sample authorizer allows, unique so a test finds its own events."""
    return f"allow-{uuid.uuid4().hex[:8]}"


def connection_id_for(token: str) -> str:
    return str(RECORDER.by_token("ws_connect", token)[-1]["requestContext"]["connectionId"])


async def reply(ws: ClientConnection) -> dict[str, Any]:
    return dict(json.loads(await ws.recv()))


async def disconnect_of(connection_id: str) -> dict[str, Any]:
    events = await eventually(lambda: RECORDER.events("ws_disconnect", connection_id))
    assert len(events) == 1
    return events[0]


# -- handshake -------------------------------------------------------------------------------


async def test_missing_token_is_401_without_calling_the_authorizer(twin: LocalTwin) -> None:
    calls = len(RECORDER.events("ws_authorizer"))
    for query in ("", "?token=", "?other=1"):
        with pytest.raises(InvalidStatus) as rejected:
            async with connect(twin.ws_url + query):
                pass
        assert rejected.value.response.status_code == 401
    assert len(RECORDER.events("ws_authorizer")) == calls


@pytest.mark.parametrize(
    ("token", "status", "connect_called"),
    [
        ("deny", 403, False),
        ("unauthorized", 401, False),  # raise Exception("Unauthorized")
        ("crash", 500, False),
        ("malformed", 500, False),
        ("bad-context", 500, False),  # a context value that is an object
        ("connect-403", 403, True),
        ("connect-crash", 500, True),
    ],
)
async def test_rejected_handshakes(
    twin: LocalTwin, token: str, status: int, connect_called: bool
) -> None:
    connects = len(RECORDER.by_token("ws_connect", token))
    with pytest.raises(InvalidStatus) as rejected:
        async with connect(f"{twin.ws_url}?token={token}"):
            pass
    assert rejected.value.response.status_code == status
    assert RECORDER.by_token("ws_authorizer", token)
    assert len(RECORDER.by_token("ws_connect", token)) == connects + int(connect_called)
    if token == "connect-403":
        assert rejected.value.response.body == b"not in this meeting"


async def test_connection_lifecycle_events(twin: LocalTwin) -> None:
    token = new_token()
    async with connect(f"{twin.ws_url}?token={token}&lang=en&lang=fr") as ws:
        connection_id = connection_id_for(token)
        await ws.send(json.dumps({"action": "ping"}))
        assert (await reply(ws))["route"] == "ping"
        await ws.close(1000, "bye")

    authorizer = RECORDER.by_token("ws_authorizer", token)[-1]
    connected = RECORDER.by_token("ws_connect", token)[-1]
    message = RECORDER.events("ws_signaling", connection_id)[-1]
    disconnected = await disconnect_of(connection_id)
    expected_authorizer = {"principalId": f"user-{token}", **AUTHORIZER_CONTEXT}
    context = connected["requestContext"]

    # The REQUEST authorizer event.
    api_id = context["apiId"]
    assert authorizer["type"] == "REQUEST"
    assert (
        authorizer["methodArn"]
        == f"arn:aws:execute-api:us-east-1:123456789012:{api_id}/ws/$connect"
    )
    assert authorizer["queryStringParameters"] == {"token": token, "lang": "fr"}
    assert authorizer["multiValueQueryStringParameters"] == {"token": [token], "lang": ["en", "fr"]}
    assert authorizer["stageVariables"] == {}
    assert authorizer["headers"]["Sec-WebSocket-Version"] == "13"
    assert authorizer["multiValueHeaders"]["Host"] == [authorizer["headers"]["Host"]]
    assert authorizer["requestContext"]["connectionId"] == connection_id
    assert authorizer["requestContext"]["routeKey"] == "$connect"
    assert authorizer["requestContext"]["eventType"] == "CONNECT"
    assert "authorizer" not in authorizer["requestContext"]

    # $connect: headers and query, no body.
    assert "body" not in connected
    assert connected["isBase64Encoded"] is False
    assert connected["headers"]["Upgrade"] == "websocket"
    assert connected["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert connected["queryStringParameters"]["token"] == token
    assert connected["multiValueQueryStringParameters"]["lang"] == ["en", "fr"]
    assert context["routeKey"] == "$connect"
    assert context["eventType"] == "CONNECT"
    assert GATEWAY_ID.match(context["connectionId"])
    assert GATEWAY_ID.match(context["requestId"])
    assert context["extendedRequestId"] == context["requestId"]
    assert isinstance(context["connectedAt"], int)
    assert isinstance(context["requestTimeEpoch"], int)
    assert REQUEST_TIME.match(context["requestTime"])
    assert context["messageDirection"] == "IN"
    assert context["stage"] == routes.STAGE
    assert context["domainName"] == f"{twin.host}:{twin.port}"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["userAgent"].startswith("Python/")
    assert context["authorizer"] == expected_authorizer

    # MESSAGE.
    assert message["body"] == '{"action": "ping"}'
    assert message["isBase64Encoded"] is False
    assert message["requestContext"]["eventType"] == "MESSAGE"
    assert message["requestContext"]["routeKey"] == "ping"
    assert GATEWAY_ID.match(message["requestContext"]["messageId"])
    assert message["requestContext"]["connectedAt"] == context["connectedAt"]
    assert message["requestContext"]["requestId"] != context["requestId"]
    assert message["requestContext"]["authorizer"] == expected_authorizer

    # $disconnect.
    disconnect_context = disconnected["requestContext"]
    assert disconnect_context["routeKey"] == "$disconnect"
    assert disconnect_context["eventType"] == "DISCONNECT"
    assert disconnect_context["disconnectStatusCode"] == 1000
    assert disconnect_context["disconnectReason"] == "bye"
    assert disconnect_context["authorizer"] == expected_authorizer
    assert disconnected["headers"]["Host"] == context["domainName"]

    # Powertools' models of the three events accept them.
    APIGatewayWebSocketConnectEventModel.model_validate(connected)
    APIGatewayWebSocketMessageEventModel.model_validate(message)
    APIGatewayWebSocketDisconnectEventModel.model_validate(disconnected)


# -- routes and replies ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "route"),
    [
        ('{"action": "chat", "text": "hi"}', "chat"),
        ('{"action": "mute_all"}', "mute_all"),
        ('{"action": "no-such-action"}', "$default"),
        ('{"action": 5}', "$default"),
        ('{"text": "no action"}', "$default"),
        ('["action", "chat"]', "$default"),
        ("not json at all", "$default"),
    ],
)
async def test_route_selection_on_body_action(twin: LocalTwin, message: str, route: str) -> None:
    async with connect(f"{twin.ws_url}?token={new_token()}") as ws:
        await ws.send(message)
        answer = await reply(ws)
    assert (answer["route"], answer["echo"]) == (route, message)


async def test_binary_message_goes_to_default_in_base64(twin: LocalTwin) -> None:
    token = new_token()
    async with connect(f"{twin.ws_url}?token={token}") as ws:
        await ws.send(b"\x00\x01binary")
        assert (await reply(ws))["route"] == "$default"
        event = RECORDER.events("ws_signaling", connection_id_for(token))[-1]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x00\x01binary"


async def test_a_handler_without_body_sends_nothing_back(twin: LocalTwin) -> None:
    async with connect(f"{twin.ws_url}?token={new_token()}") as ws:
        await ws.send(json.dumps({"action": "chat", "no_reply": True}))
        await ws.send(json.dumps({"action": "ping"}))
        assert (await reply(ws))["route"] == "ping"


@pytest.mark.parametrize(
    "request_body",
    [{"action": "chat", "crash": True}, {"action": "chat", "sleep": SIGNALING_TIMEOUT + 0.5}],
    ids=["exception", "timeout"],
)
async def test_integration_error_is_reported_and_the_connection_stays(
    twin: LocalTwin, request_body: dict[str, Any]
) -> None:
    token = new_token()
    async with connect(f"{twin.ws_url}?token={token}") as ws:
        await ws.send(json.dumps(request_body))
        error = await reply(ws)
        connection_id = connection_id_for(token)
        failed = RECORDER.events("ws_signaling", connection_id)[-1]
        assert error == {
            "message": "Internal server error",
            "connectionId": connection_id,
            "requestId": failed["requestContext"]["requestId"],
        }
        await ws.send(json.dumps({"action": "ping"}))
        assert (await reply(ws))["route"] == "ping"


async def test_messages_are_handled_concurrently(twin: LocalTwin) -> None:
    async with connect(f"{twin.ws_url}?token={new_token()}") as ws:
        await ws.send(json.dumps({"action": "hand", "sleep": 0.5}))
        await ws.send(json.dumps({"action": "ping"}))
        # The quick message is not stuck behind the slow one.
        assert (await reply(ws))["route"] == "ping"
        assert (await reply(ws))["route"] == "hand"


# -- the 128 KiB message limit ---------------------------------------------------------------


def message_of_size(size: int) -> str:
    skeleton = json.dumps({"action": "ping", "pad": ""})
    return json.dumps({"action": "ping", "pad": "x" * (size - len(skeleton))})


async def test_a_message_of_exactly_128_kib_is_accepted(twin: LocalTwin) -> None:
    message = message_of_size(routes.MAX_MESSAGE_BYTES)
    assert len(message.encode()) == routes.MAX_MESSAGE_BYTES
    async with connect(f"{twin.ws_url}?token={new_token()}", max_size=None) as ws:
        await ws.send(message)
        assert (await reply(ws))["route"] == "ping"


async def test_a_larger_message_closes_with_1009(twin: LocalTwin) -> None:
    token = new_token()
    async with connect(f"{twin.ws_url}?token={token}") as ws:
        connection_id = connection_id_for(token)
        await ws.send(message_of_size(routes.MAX_MESSAGE_BYTES + 1))
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert (ws.close_code, ws.close_reason) == (1009, "Message too big")
    disconnected = await disconnect_of(connection_id)
    assert disconnected["requestContext"]["disconnectStatusCode"] == 1009
    assert disconnected["requestContext"]["disconnectReason"] == "Message too big"
    assert not RECORDER.events("ws_signaling", connection_id)


# -- $disconnect -----------------------------------------------------------------------------


async def test_a_drop_without_close_frame_reports_1006(twin: LocalTwin) -> None:
    token = new_token()
    async with connect(f"{twin.ws_url}?token={token}") as ws:
        connection_id = connection_id_for(token)
        ws.transport.abort()
    disconnected = await disconnect_of(connection_id)
    assert disconnected["requestContext"]["disconnectStatusCode"] == 1006


async def test_a_close_frame_without_status_reports_1005(twin: LocalTwin) -> None:
    token = new_token()
    async with connect(f"{twin.ws_url}?token={token}") as ws:
        connection_id = connection_id_for(token)
        # An empty close frame (masked, as clients must): websockets' API cannot send one.
        ws.transport.write(b"\x88\x80" + b"\x00\x00\x00\x00")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    disconnected = await disconnect_of(connection_id)
    assert disconnected["requestContext"]["disconnectStatusCode"] == 1005
    assert (
        disconnected["requestContext"]["disconnectReason"]
        == "Client-side close frame status not set"
    )


async def test_other_paths_refuse_the_upgrade(twin: LocalTwin) -> None:
    with pytest.raises(InvalidStatus) as rejected:
        async with connect(f"{twin.base_url.replace('http', 'ws')}/other?token=allow"):
            pass
    assert rejected.value.response.status_code == 404
