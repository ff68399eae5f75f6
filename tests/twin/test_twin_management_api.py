"""The @connections management API, through boto3's apigatewaymanagementapi client."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from infra.twin import LocalTwin
from tests.twin.helpers import eventually, running_twin
from tests.twin.sample_handlers import RECORDER
from townhall import routes


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTwin]:
    yield from running_twin(tmp_path_factory.mktemp("twin-management"))


def new_token() -> str:
    return f"allow-{uuid.uuid4().hex[:8]}"


def connection_id_for(token: str) -> str:
    return str(RECORDER.by_token("ws_connect", token)[-1]["requestContext"]["connectionId"])


async def test_posts_arrive_in_order_before_the_call_returns(twin: LocalTwin) -> None:
    management = twin.management_client()
    token = new_token()
    async with connect(f"{twin.ws_url}?token={token}") as ws:
        connection_id = connection_id_for(token)
        assert "=" in connection_id  # botocore percent-encodes it; the twin decodes it
        for n in range(20):
            management.post_to_connection(ConnectionId=connection_id, Data=f"message {n}".encode())
        received = [await ws.recv() for _ in range(20)]
    assert received == [f"message {n}" for n in range(20)]


async def test_handlers_post_through_the_management_endpoint(twin: LocalTwin) -> None:
    async with connect(f"{twin.ws_url}?token={new_token()}") as ws:
        await ws.send(json.dumps({"action": "join", "post": ["welcome", "roster"]}))
        first, second, route_reply = [await ws.recv() for _ in range(3)]
    assert (first, second) == ("welcome", "roster")
    assert json.loads(route_reply)["posted"] == 2


async def test_non_utf8_data_arrives_as_a_binary_message(twin: LocalTwin) -> None:
    token = new_token()
    async with connect(f"{twin.ws_url}?token={token}") as ws:
        twin.management_client().post_to_connection(
            ConnectionId=connection_id_for(token), Data=b"\xff\x00"
        )
        assert await ws.recv() == b"\xff\x00"


async def test_get_connection(twin: LocalTwin) -> None:
    token = new_token()
    async with connect(f"{twin.ws_url}?token={token}") as ws:
        await ws.send(json.dumps({"action": "ping"}))
        await ws.recv()
        info = twin.management_client().get_connection(ConnectionId=connection_id_for(token))
    now = datetime.now(UTC)
    assert now - timedelta(seconds=30) < info["ConnectedAt"] <= info["LastActiveAt"] <= now
    assert info["Identity"]["SourceIp"] == "127.0.0.1"
    assert info["Identity"]["UserAgent"].startswith("Python/")


async def test_delete_closes_the_socket_and_then_it_is_gone(twin: LocalTwin) -> None:
    management = twin.management_client()
    token = new_token()
    async with connect(f"{twin.ws_url}?token={token}") as ws:
        connection_id = connection_id_for(token)
        response = management.delete_connection(ConnectionId=connection_id)
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1000
    with pytest.raises(management.exceptions.GoneException):
        management.post_to_connection(ConnectionId=connection_id, Data=b"too late")
    with pytest.raises(management.exceptions.GoneException):
        management.get_connection(ConnectionId=connection_id)
    disconnected = await eventually(lambda: RECORDER.events("ws_disconnect", connection_id))
    assert disconnected[0]["requestContext"]["disconnectStatusCode"] == 1000
    assert disconnected[0]["requestContext"]["disconnectReason"] == "Connection Closed Normally"


async def test_gone_after_the_client_closes(twin: LocalTwin) -> None:
    management = twin.management_client()
    token = new_token()
    async with connect(f"{twin.ws_url}?token={token}"):
        connection_id = connection_id_for(token)
    with pytest.raises(management.exceptions.GoneException):
        management.post_to_connection(ConnectionId=connection_id, Data=b"hello?")


def test_unknown_connection_is_gone(twin: LocalTwin) -> None:
    management = twin.management_client()
    with pytest.raises(management.exceptions.GoneException) as gone:
        management.post_to_connection(ConnectionId="Tm9TdWNoQ29ubg=", Data=b"x")
    response = gone.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 410
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "GoneException"
    with pytest.raises(management.exceptions.GoneException):
        management.delete_connection(ConnectionId="Tm9TdWNoQ29ubg=")


async def test_post_body_limit_is_128_kib(twin: LocalTwin) -> None:
    management = twin.management_client()
    token = new_token()
    async with connect(f"{twin.ws_url}?token={token}") as ws:
        connection_id = connection_id_for(token)
        largest = b"x" * routes.MAX_MESSAGE_BYTES
        management.post_to_connection(ConnectionId=connection_id, Data=largest)
        assert await ws.recv() == largest.decode()
        with pytest.raises(management.exceptions.PayloadTooLargeException) as too_large:
            management.post_to_connection(ConnectionId=connection_id, Data=largest + b"x")
        assert too_large.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
        # The connection is unharmed.
        management.post_to_connection(ConnectionId=connection_id, Data=b"still here")
        assert await ws.recv() == "still here"


@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
def test_requests_without_sigv4_are_403(twin: LocalTwin, method: str) -> None:
    response = httpx.request(
        method, f"{twin.management_endpoint}/@connections/abc%3D", content=b"x", timeout=5
    )
    assert response.status_code == 403
    assert response.json() == {"message": "Missing Authentication Token"}
