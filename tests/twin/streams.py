"""Helpers for the stream poller's tests: event items under a partition key of one's own, the
batches the recording consumer (`stream_handlers.consumer`) got for that key, and the stream
itself as DynamoDB Streams' API shows it."""

from __future__ import annotations

import uuid
from typing import Any

import boto3

from infra.twin import LocalTwin, TwinOptions
from tests.twin.stream_handlers import MODULE, SEEN, Batch
from townhall import functions

OVERRIDES = {
    functions.OUTBOX_FANOUT.logical_id: f"{MODULE}.consumer",
    functions.OUTBOX_SLICE.logical_id: f"{MODULE}.echo",
}
SOURCE = functions.OUTBOX_DELIVERY.logical_id


def options() -> TwinOptions:
    return TwinOptions(handler_overrides=OVERRIDES)


def new_pk() -> str:
    return f"M#{uuid.uuid4().hex[:8]}#S#1"


def event_item(pk: str, n: int, mode: str | None = None, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": pk},
        "sk": {"S": f"E#{n:012d}#00"},
        "type": {"S": "chat.message"},
        "seq": {"N": str(n)},
        **extra,
    }
    if mode is not None:
        item["mode"] = {"S": mode}
    return item


def sk(n: int) -> str:
    return f"E#{n:012d}#00"


def batches_of(pk: str) -> list[Batch]:
    """This partition key's batches (a batch holds one key's records only in these tests)."""
    return [b for b in SEEN.snapshot() if b.records[0]["dynamodb"]["Keys"]["pk"]["S"] == pk]


def delivered(pk: str) -> list[str]:
    return [s for b in batches_of(pk) for s in b.sort_keys]


def put_all(twin: LocalTwin, items: list[dict[str, Any]]) -> None:
    """One transaction: its records reach the stream together, so they form one batch."""
    twin.dynamodb_client().transact_write_items(
        TransactItems=[
            {"Put": {"TableName": twin.table_names["MEETINGS_TABLE"], "Item": item}}
            for item in items
        ]
    )


def stream_records(twin: LocalTwin) -> list[dict[str, Any]]:
    """Everything the Meetings table's stream holds now, oldest first."""
    streams = streams_client(twin)
    arn = twin.dynamodb_client().describe_table(TableName=twin.table_names["MEETINGS_TABLE"])[
        "Table"
    ]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records: list[dict[str, Any]] = []
    for _ in range(1000):  # 1,000 records a page; bounded
        answer = streams.get_records(ShardIterator=iterator, Limit=1000)
        records += answer["Records"]
        iterator = answer["NextShardIterator"]
        if not answer["Records"]:
            return records
    raise AssertionError("the stream never ended")


def streams_client(twin: LocalTwin) -> Any:
    return boto3.client(
        "dynamodbstreams",
        endpoint_url=twin.dynamodb_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
