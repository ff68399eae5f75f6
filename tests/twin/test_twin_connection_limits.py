"""Connections the twin ends itself: idle timeout, maximum duration, and lost $disconnects."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from infra.twin import LocalTwin
from tests.twin.helpers import eventually, running_twin
from tests.twin.sample_handlers import RECORDER

IDLE_TIMEOUT = 1.0
MAX_CONNECTION = 2.0


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTwin]:
    yield from running_twin(
        tmp_path_factory.mktemp("twin-limits"),
        idle_timeout_seconds=IDLE_TIMEOUT,
        max_connection_seconds=MAX_CONNECTION,
        lose_abrupt_disconnects=True,
    )


def new_token() -> str:
    return f"allow-{uuid.uuid4().hex[:8]}"


def connection_id_for(token: str) -> str:
    return str(RECORDER.by_token("ws_connect", token)[-1]["requestContext"]["connectionId"])


async def test_lost_disconnect_leaves_a_connection_that_answers_410(twin: LocalTwin) -> None:
    token = new_token()
    async with connect(f"{twin.ws_url}?token={token}") as ws:
        connection_id = connection_id_for(token)
        ws.transport.abort()  # no close frame
    await eventually(lambda: connection_id not in twin.live_connection_ids())
    management = twin.management_client()
    with pytest.raises(management.exceptions.GoneException):
        management.post_to_connection(ConnectionId=connection_id, Data=b"anyone there?")
    await asyncio.sleep(0.3)  # room for a $disconnect that should not come
    assert RECORDER.events("ws_disconnect", connection_id) == []


async def test_a_clean_close_still_runs_disconnect(twin: LocalTwin) -> None:
    token = new_token()
    async with connect(f"{twin.ws_url}?token={token}"):
        connection_id = connection_id_for(token)
    events = await eventually(lambda: RECORDER.events("ws_disconnect", connection_id))
    assert events[0]["requestContext"]["disconnectStatusCode"] == 1000


async def test_idle_connection_is_closed_with_1001(twin: LocalTwin) -> None:
    token = new_token()
    async with connect(f"{twin.ws_url}?token={token}") as ws:
        connection_id = connection_id_for(token)
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), timeout=IDLE_TIMEOUT + 2)
        assert IDLE_TIMEOUT - 0.1 < time.monotonic() - started < IDLE_TIMEOUT + 1
        assert (ws.close_code, ws.close_reason) == (1001, "Going away")
    events = await eventually(lambda: RECORDER.events("ws_disconnect", connection_id))
    assert events[0]["requestContext"]["disconnectStatusCode"] == 1001
    assert events[0]["requestContext"]["disconnectReason"] == "Going away"


async def test_busy_connection_is_closed_at_the_maximum_duration(twin: LocalTwin) -> None:
    token = new_token()
    async with connect(f"{twin.ws_url}?token={token}") as ws:
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):
            while time.monotonic() - started < MAX_CONNECTION + 2:
                # Traffic every 0.3 s keeps the idle timeout (1 s) from firing.
                await ws.send(json.dumps({"action": "ping"}))
                await asyncio.wait_for(ws.recv(), timeout=1)
                await asyncio.sleep(0.3)
        assert MAX_CONNECTION - 0.1 < time.monotonic() - started < MAX_CONNECTION + 1
        assert ws.close_code == 1001
