"""Fixtures that start the local twin on free loopback ports for the integration tests.

Only one twin runs per process (moto's state and os.environ are process-wide), so each twin
is module-scoped and modules run one after another.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer

from infra.twin.server import LocalTwin, TwinOptions
from tests.integration.browser import chromium  # noqa: F401  (a fixture for every browser test)
from tests.integration.room_pages import room_browser  # noqa: F401  (for the room's tests)

_deserializer = TypeDeserializer()


class Twin:
    """A running LocalTwin plus read-only views of its tables for assertions."""

    def __init__(self, local: LocalTwin) -> None:
        self.local = local
        self.base_url = local.base_url
        self.ws_url = local.ws_url
        self.signing_key_file = str(local.signing_key_file)
        self._db = local.dynamodb_client()
        self._tables = local.table_names

    def meeting_items(self, meeting_id: str) -> list[dict[str, Any]]:
        """Everything stored for the meeting: its own partition, then each of its sessions'
        partitions, oldest session first."""
        own = self._partition(f"M#{meeting_id}")
        sessions = sorted((i for i in own if i["sk"].startswith("SESSION#")), key=lambda i: i["sk"])
        return own + [
            item
            for row in sessions
            for item in self._partition(f"M#{meeting_id}#S#{row['session_id']}")
        ]

    def session_items(self, meeting_id: str, session_id: str) -> list[dict[str, Any]]:
        return self._partition(f"M#{meeting_id}#S#{session_id}")

    def _partition(self, pk: str) -> list[dict[str, Any]]:
        pages = self._db.get_paginator("query").paginate(
            TableName=self._tables["MEETINGS_TABLE"],
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
            ConsistentRead=True,
        )
        return [
            {k: _deserializer.deserialize(v) for k, v in item.items()}
            for page in pages
            for item in page["Items"]
        ]

    def connection_of(self, meeting_id: str, participant_id: str) -> str | None:
        for item in self.meeting_items(meeting_id):
            if item["sk"] == f"P#{participant_id}":
                return item.get("connection_id")
        return None

    def connection_item(self, connection_id: str) -> dict[str, Any] | None:
        item = self._db.get_item(
            TableName=self._tables["CONNECTIONS_TABLE"],
            Key={"connection_id": {"S": connection_id}},
            ConsistentRead=True,
        ).get("Item")
        return {k: _deserializer.deserialize(v) for k, v in item.items()} if item else None


def _start(
    tmp_path_factory: pytest.TempPathFactory, options: TwinOptions, host: str = "127.0.0.1"
) -> Iterator[Twin]:
    data: Path = tmp_path_factory.mktemp("twin")
    local = LocalTwin.start(data, host=host, options=options)
    try:
        yield Twin(local)
    finally:
        local.stop()


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    yield from _start(tmp_path_factory, TwinOptions())


@pytest.fixture(scope="module")
def lossy_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    """A twin that loses the $disconnect of sockets dropped without a close frame, as AWS may."""
    yield from _start(tmp_path_factory, TwinOptions(lose_abrupt_disconnects=True))
