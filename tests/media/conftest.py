"""Shared fixtures: a throwaway DynamoDB (moto's server in its own process, one per module) for
the registry, placement and node life-cycle tests, and loopback-only ICE plus a meeting room
for the room tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aioice.ice
import pytest

from infra.twin.dynamodb import LocalDynamoDB


@pytest.fixture(scope="module")
def db() -> Iterator[LocalDynamoDB]:
    with LocalDynamoDB(None).start() as local:
        yield local


@pytest.fixture
def client(db: LocalDynamoDB) -> Iterator[Any]:
    client = db.new_client()
    yield client
    client.close()


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gather only 127.0.0.1 host candidates (aioice skips loopback by default)."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


@pytest.fixture
async def meeting(loopback_only: None) -> AsyncIterator[tuple[Any, list[Any]]]:
    """A room (announcing 127.0.0.1) and a list to put clients in; all closed afterwards."""
    from media_fleet.sfu.room import MeetingRoom

    room = MeetingRoom("m-test", announced_host="127.0.0.1")
    clients: list[Any] = []
    try:
        yield room, clients
    finally:
        for client in clients:
            await client.close()
        await asyncio.wait_for(room.close(), 10)
