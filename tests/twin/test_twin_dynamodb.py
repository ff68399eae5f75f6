"""LocalDynamoDB: the tables as the schema specifies them, and their snapshots on disk."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.twin.dynamodb import LocalDynamoDB, table_name
from tests.twin.helpers import wait_until
from townhall import schema


@pytest.fixture
def database(tmp_path: Path) -> Iterator[LocalDynamoDB]:
    with LocalDynamoDB(tmp_path, snapshot_interval_seconds=0.2).start() as db:
        yield db


def test_every_table_exists_as_specified(database: LocalDynamoDB) -> None:
    client = database.new_client()
    assert set(client.list_tables()["TableNames"]) == {table_name(t) for t in schema.ALL_TABLES}
    assert database.table_names["MEETINGS_TABLE"] == "townhall-meetings"
    for spec in schema.ALL_TABLES:
        table = client.describe_table(TableName=table_name(spec))["Table"]
        keys = {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]}
        expected = {spec.partition_key.name: "HASH"}
        if spec.sort_key:
            expected[spec.sort_key.name] = "RANGE"
        assert keys == expected
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        indexes = {i["IndexName"]: i for i in table.get("GlobalSecondaryIndexes", [])}
        assert set(indexes) == {i.name for i in spec.indexes}
        for index in indexes.values():
            assert index["Projection"]["ProjectionType"] == "ALL"
        ttl = client.describe_time_to_live(TableName=table_name(spec))["TimeToLiveDescription"]
        assert (ttl["TimeToLiveStatus"], ttl.get("AttributeName")) == (
            "ENABLED",
            spec.ttl_attribute,
        )


def test_items_survive_a_restart(tmp_path: Path) -> None:
    now = int(time.time())
    items: dict[str, dict[str, Any]] = {
        "plain": {"pk": {"S": "meeting#1"}, "sk": {"S": "meta"}, "title": {"S": "Standup ☕"}},
        "binary": {
            "pk": {"S": "meeting#2"},
            "sk": {"S": "blob"},
            "data": {"B": b"\x00\xff"},
            "set": {"BS": [b"a", b"b"]},
            "nested": {"M": {"inner": {"L": [{"B": b"\x01"}, {"N": "7"}]}}},
        },
        "expired-an-hour-ago": {
            "pk": {"S": "meeting#3"},
            "sk": {"S": "meta"},
            "ttl": {"N": str(now - 3600)},
        },
        "expired-two-days-ago": {
            "pk": {"S": "meeting#4"},
            "sk": {"S": "meta"},
            "ttl": {"N": str(now - 2 * 86400)},
        },
    }
    with LocalDynamoDB(tmp_path).start() as first:
        client = first.new_client()
        for item in items.values():
            client.put_item(TableName="townhall-meetings", Item=item)

    with LocalDynamoDB(tmp_path).start() as second:
        client = second.new_client()
        found = client.scan(TableName="townhall-meetings")["Items"]
        by_pk = {i["pk"]["S"]: i for i in found}
        # Expired items stay (reads filter them), unless they expired over a day ago.
        assert set(by_pk) == {"meeting#1", "meeting#2", "meeting#3"}
        assert by_pk["meeting#1"] == items["plain"]
        assert by_pk["meeting#2"]["data"] == {"B": b"\x00\xff"}
        assert sorted(by_pk["meeting#2"]["set"]["BS"]) == [b"a", b"b"]
        assert by_pk["meeting#2"]["nested"] == items["binary"]["nested"]
        # The GSI is rebuilt from the restored items, not just the base table.
        client.put_item(
            TableName="townhall-meetings",
            Item={
                "pk": {"S": "meeting#5"},
                "sk": {"S": "meta"},
                "host_id": {"S": "h"},
                "start_utc": {"S": "1"},
            },
        )
        hosted = client.query(
            TableName="townhall-meetings",
            IndexName="by_host",
            KeyConditionExpression="host_id = :h",
            ExpressionAttributeValues={":h": {"S": "h"}},
        )
        assert [i["pk"]["S"] for i in hosted["Items"]] == ["meeting#5"]


def test_snapshots_are_taken_while_running(database: LocalDynamoDB, tmp_path: Path) -> None:
    path = tmp_path / "dynamodb" / "townhall-connections.json"
    database.new_client().put_item(
        TableName="townhall-connections", Item={"connection_id": {"S": "abc="}}
    )

    def snapshot_has_item() -> bool:
        if not path.exists():
            return False
        document = json.loads(path.read_text())
        return document["items"] == [{"connection_id": {"S": "abc="}}]

    wait_until(snapshot_has_item, timeout=3)
    database.stop()
    # Written through a temporary file and a rename: nothing half-written is left behind.
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_an_unchanged_table_is_not_rewritten(database: LocalDynamoDB, tmp_path: Path) -> None:
    database.snapshot()
    path = tmp_path / "dynamodb" / "townhall-accounts.json"
    before = path.stat().st_mtime_ns
    time.sleep(0.5)  # a couple of periodic snapshots
    database.snapshot()
    assert path.stat().st_mtime_ns == before


def test_without_a_data_folder_nothing_is_written(tmp_path: Path) -> None:
    with LocalDynamoDB(None).start() as db:
        db.new_client().put_item(TableName="townhall-accounts", Item={"pk": {"S": "a"}})
    assert list(tmp_path.iterdir()) == []
