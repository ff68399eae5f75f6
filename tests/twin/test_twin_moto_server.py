"""The twin's moto server writes DynamoDB's item answers with `json.dumps` instead of moto's
shape-walking serializer; every operation it does that for must answer exactly as before."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import StreamShard
from moto.dynamodb.responses import DynamoHandler, DynamoResult
from moto.dynamodbstreams.models import DynamoDBStreamsBackend, dynamodbstreams_backends

from infra.twin import moto_server

Scenario = Callable[[Any], list[Any]]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    # Restored at teardown, whatever install() did.
    monkeypatch.setattr(DynamoResult, "execute_result", DynamoResult.execute_result)
    monkeypatch.setattr(DynamoHandler, "transact_write_items", DynamoHandler.transact_write_items)
    monkeypatch.setattr(
        DynamoDBBackend, "transact_write_items", DynamoDBBackend.transact_write_items
    )
    monkeypatch.setattr(dynamodb_models, "copy", dynamodb_models.copy)
    for owner, name in (
        (StreamShard, "add"),
        (StreamShard, "get"),
        (DynamoDBStreamsBackend, "get_records"),
        (DynamoDBStreamsBackend, "get_shard_iterator"),
    ):
        monkeypatch.setattr(owner, name, getattr(owner, name))
    yield


def _item(i: int) -> dict[str, Any]:
    return {
        "pk": {"S": "M#1"},
        "sk": {"S": f"P#{i:03d}"},
        "n": {"N": str(i)},
        "flag": {"BOOL": i % 2 == 0},
        "nothing": {"NULL": True},
        "list": {"L": [{"S": "a"}, {"N": "1.5"}]},
        "map": {"M": {"x": {"S": "y"}, "z": {"SS": ["a", "b"]}}},
        "numbers": {"NS": ["1", "2"]},
        "gsi": {"S": f"G#{i % 3}"},
    }


def _answers(client: Any) -> list[Any]:
    """Every fast-path operation, with and without items, attributes and paging; binary
    attributes (which must fall back to moto's serializer) included."""
    client.create_table(
        TableName="t",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "gsi", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-gsi",
                "KeySchema": [{"AttributeName": "gsi", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    out: list[Any] = []

    def call(name: str, **kwargs: Any) -> None:
        try:
            answer = getattr(client, name)(**kwargs)
            answer.pop("ResponseMetadata", None)
            out.append((name, answer))
        except client.exceptions.ClientError as exc:
            out.append(
                (name, "error", exc.response["Error"], exc.response.get("CancellationReasons"))
            )

    for i in range(12):
        call("put_item", TableName="t", Item=_item(i))
    call("put_item", TableName="t", Item=_item(3), ReturnValues="ALL_OLD")
    call("put_item", TableName="t", Item=_item(4), ReturnConsumedCapacity="TOTAL")
    call("put_item", TableName="t", Item={**_item(20), "blob": {"B": b"\x00\xff"}})
    call("put_item", TableName="t", Item=_item(5), ConditionExpression="attribute_not_exists(pk)")
    call("get_item", TableName="t", Key={"pk": {"S": "M#1"}, "sk": {"S": "P#001"}})
    call("get_item", TableName="t", Key={"pk": {"S": "M#1"}, "sk": {"S": "P#020"}})
    call("get_item", TableName="t", Key={"pk": {"S": "M#1"}, "sk": {"S": "none"}})
    call(
        "query",
        TableName="t",
        KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
        ExpressionAttributeValues={":pk": {"S": "M#1"}, ":p": {"S": "P#"}},
        ProjectionExpression="sk, #n, flag",
        ExpressionAttributeNames={"#n": "n"},
        ConsistentRead=True,
    )
    call(
        "query",
        TableName="t",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "M#1"}},
        Limit=4,
        ScanIndexForward=False,
    )
    call(
        "query",
        TableName="t",
        IndexName="by-gsi",
        KeyConditionExpression="gsi = :g",
        ExpressionAttributeValues={":g": {"S": "G#1"}},
        Select="COUNT",
    )
    call("scan", TableName="t", Limit=5)
    call(
        "scan",
        TableName="t",
        FilterExpression="flag = :t",
        ExpressionAttributeValues={":t": {"BOOL": True}},
    )
    call(
        "update_item",
        TableName="t",
        Key={"pk": {"S": "M#1"}, "sk": {"S": "META"}},
        UpdateExpression="ADD seq :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValues="UPDATED_NEW",
    )
    call(
        "update_item",
        TableName="t",
        Key={"pk": {"S": "M#1"}, "sk": {"S": "P#002"}},
        UpdateExpression="SET flag = :f REMOVE nothing",
        ExpressionAttributeValues={":f": {"BOOL": True}},
        ReturnValues="ALL_NEW",
    )
    call(
        "update_item",
        TableName="t",
        Key={"pk": {"S": "M#1"}, "sk": {"S": "P#002"}},
        UpdateExpression="SET flag = :f",
        ConditionExpression="attribute_not_exists(pk)",
        ExpressionAttributeValues={":f": {"BOOL": True}},
    )
    call(
        "delete_item",
        TableName="t",
        Key={"pk": {"S": "M#1"}, "sk": {"S": "P#011"}},
        ReturnValues="ALL_OLD",
    )
    call("delete_item", TableName="t", Key={"pk": {"S": "M#1"}, "sk": {"S": "P#010"}})
    call(
        "batch_get_item",
        RequestItems={
            "t": {"Keys": [{"pk": {"S": "M#1"}, "sk": {"S": f"P#00{i}"}} for i in range(4)]}
        },
    )
    call(
        "batch_write_item",
        RequestItems={"t": [{"PutRequest": {"Item": _item(30 + i)}} for i in range(3)]},
    )
    call(
        "transact_write_items",
        TransactItems=[
            {"Put": {"TableName": "t", "Item": _item(40)}},
            {
                "Update": {
                    "TableName": "t",
                    "Key": {"pk": {"S": "M#1"}, "sk": {"S": "META"}},
                    "UpdateExpression": "ADD seq :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
        ],
    )
    call(
        "transact_write_items",
        TransactItems=[
            {
                "Put": {
                    "TableName": "t",
                    "Item": _item(40),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ],
    )
    # A transaction whose last write fails: the earlier ones (an update of an existing item,
    # a new item, a delete) must all be undone.
    call(
        "transact_write_items",
        TransactItems=[
            {
                "Update": {
                    "TableName": "t",
                    "Key": {"pk": {"S": "M#1"}, "sk": {"S": "P#001"}},
                    "UpdateExpression": "SET flag = :f, n = n + :one",
                    "ExpressionAttributeValues": {":f": {"BOOL": False}, ":one": {"N": "1"}},
                }
            },
            {"Put": {"TableName": "t", "Item": _item(50)}},
            {"Delete": {"TableName": "t", "Key": {"pk": {"S": "M#1"}, "sk": {"S": "P#002"}}}},
            {
                "ConditionCheck": {
                    "TableName": "t",
                    "Key": {"pk": {"S": "M#1"}, "sk": {"S": "META"}},
                    "ConditionExpression": "seq = :zero",
                    "ExpressionAttributeValues": {":zero": {"N": "0"}},
                }
            },
        ],
    )
    call("scan", TableName="t")
    call(
        "transact_get_items",
        TransactItems=[
            {"Get": {"TableName": "t", "Key": {"pk": {"S": "M#1"}, "sk": {"S": "P#040"}}}},
            {"Get": {"TableName": "t", "Key": {"pk": {"S": "M#1"}, "sk": {"S": "P#020"}}}},
        ],
    )
    return out


def _run(fast: bool) -> list[Any]:
    if fast:
        moto_server.install()
    with mock_aws():
        return _answers(boto3.client("dynamodb", region_name="us-east-1"))


def test_fast_writer_answers_exactly_as_motos_serializer(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    stock = _run(fast=False)
    ready = moto_server.is_wire_ready
    verdicts: list[bool] = []

    def counted(value: Any) -> bool:
        verdicts.append(ready(value))
        return verdicts[-1]

    monkeypatch.setattr(moto_server, "is_wire_ready", counted)
    fast = _run(fast=True)
    # Both writers were used: most answers fast, the binary ones through moto's serializer.
    assert verdicts.count(True) > 15 and verdicts.count(False) >= 1
    assert DynamoResult.execute_result.twin_fast_path  # type: ignore[attr-defined]
    assert len(fast) == len(stock) > 20
    for stock_answer, fast_answer in zip(stock, fast, strict=True):
        assert fast_answer == stock_answer


def test_only_json_native_results_take_the_fast_path() -> None:
    assert moto_server.is_wire_ready({"Items": [{"a": {"S": "x"}, "n": {"N": "1"}}], "Count": 1})
    assert moto_server.is_wire_ready({"ok": True, "f": 1.5, "l": []})
    assert not moto_server.is_wire_ready({"Item": {"b": {"B": b"\x00"}}})
    assert not moto_server.is_wire_ready({"LastEvaluatedKey": None})
    assert not moto_server.is_wire_ready({1: "non-string key"})


def test_a_retried_transaction_is_answered_not_applied_again(aws: None) -> None:
    """DynamoDB's ClientRequestToken promise, which a botocore retry after a read timeout
    relies on: the same token and items answer as before; other items are refused."""
    moto_server.install()
    with mock_aws():
        client: Any = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )
        put_once = [
            {
                "Put": {
                    "TableName": "t",
                    "Item": {"pk": {"S": "a"}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": "t",
                    "Key": {"pk": {"S": "seq"}},
                    "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
        ]
        client.transact_write_items(TransactItems=put_once, ClientRequestToken="token-1")
        client.transact_write_items(TransactItems=put_once, ClientRequestToken="token-1")
        counter = client.get_item(TableName="t", Key={"pk": {"S": "seq"}})["Item"]
        assert counter["n"] == {"N": "1"}  # applied once
        with pytest.raises(client.exceptions.TransactionCanceledException):
            client.transact_write_items(TransactItems=put_once, ClientRequestToken="token-2")
        with pytest.raises(client.exceptions.IdempotentParameterMismatchException):
            client.transact_write_items(TransactItems=put_once[1:], ClientRequestToken="token-1")


# -- streams ------------------------------------------------------------------------------------


def _stream_table(client: Any) -> tuple[Any, str, str]:
    """A table with a NEW_IMAGE stream: (streams client, stream ARN, shard id)."""
    client.create_table(
        TableName="s",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    arn = client.describe_table(TableName="s")["Table"]["LatestStreamArn"]
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    return streams, arn, shard


def _read_all(streams: Any, arn: str, shard: str) -> list[dict[str, Any]]:
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return list(streams.get_records(ShardIterator=iterator, Limit=1000)["Records"])


def test_a_cancelled_transaction_on_a_stream_table_keeps_the_fast_backup(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No whole-table copy (moto's slow path), and no stream record of the cancelled writes
    (nor of the rollback's own put and delete)."""
    moto_server.install()
    with mock_aws():
        client: Any = boto3.client("dynamodb", region_name="us-east-1")
        streams, arn, shard = _stream_table(client)
        client.put_item(TableName="s", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
        before = _read_all(streams, arn, shard)
        copies: list[Any] = []
        real_deepcopy = dynamodb_models.copy.deepcopy

        def counting(value: Any, memo: Any = None) -> Any:
            copy = real_deepcopy(value, memo)
            if copy is not value:
                copies.append(type(value).__name__)
            return copy

        monkeypatch.setattr(dynamodb_models.copy, "deepcopy", counting)
        with pytest.raises(client.exceptions.TransactionCanceledException):
            client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": "s", "Item": {"pk": {"S": "new"}}}},
                    {
                        "Update": {
                            "TableName": "s",
                            "Key": {"pk": {"S": "a"}},
                            "UpdateExpression": "SET n = :two",
                            "ExpressionAttributeValues": {":two": {"N": "2"}},
                        }
                    },
                    {
                        "ConditionCheck": {
                            "TableName": "s",
                            "Key": {"pk": {"S": "missing"}},
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                ]
            )
        assert "Table" not in copies  # every table "copied" as itself: no whole-table copy
        assert _read_all(streams, arn, shard) == before
        assert client.get_item(TableName="s", Key={"pk": {"S": "a"}})["Item"]["n"] == {"N": "1"}
        assert "Item" not in client.get_item(TableName="s", Key={"pk": {"S": "new"}})
        # The next record follows the last kept one.
        client.put_item(TableName="s", Item={"pk": {"S": "b"}})
        after = _read_all(streams, arn, shard)
        assert int(after[-1]["dynamodb"]["SequenceNumber"]) == (
            int(before[-1]["dynamodb"]["SequenceNumber"]) + 1
        )


def test_records_past_the_retention_are_trimmed_and_refused(aws: None) -> None:
    moto_server.install(stream_retention_seconds=0.2)
    with mock_aws():
        client: Any = boto3.client("dynamodb", region_name="us-east-1")
        streams, arn, shard = _stream_table(client)
        for key in ("a", "b", "c"):
            client.put_item(TableName="s", Item={"pk": {"S": key}})
        old = _read_all(streams, arn, shard)
        assert len(old) == 3
        time.sleep(moto_server.STREAM_AGE_CHECK_SECONDS + 0.1)
        client.put_item(TableName="s", Item={"pk": {"S": "d"}})
        kept = _read_all(streams, arn, shard)
        assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in kept] == ["d"]
        assert int(kept[0]["dynamodb"]["SequenceNumber"]) == (
            int(old[-1]["dynamodb"]["SequenceNumber"]) + 1
        )
        with pytest.raises(streams.exceptions.TrimmedDataAccessException):
            streams.get_shard_iterator(
                StreamArn=arn,
                ShardId=shard,
                ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                SequenceNumber=old[0]["dynamodb"]["SequenceNumber"],
            )


def test_used_and_surplus_shard_iterators_are_forgotten(aws: None) -> None:
    moto_server.install()
    with mock_aws():
        client: Any = boto3.client("dynamodb", region_name="us-east-1")
        streams, arn, shard = _stream_table(client)
        backend = dynamodbstreams_backends["123456789012"]["us-east-1"]
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST"
        )["ShardIterator"]
        first = iterator
        for _ in range(50):  # a poller's life
            iterator = streams.get_records(ShardIterator=iterator)["NextShardIterator"]
        assert list(backend.shard_iterators) == [iterator]
        with pytest.raises(streams.exceptions.ExpiredIteratorException):
            streams.get_records(ShardIterator=first)
        for _ in range(moto_server.MAX_SHARD_ITERATORS + 20):
            streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")
        assert len(backend.shard_iterators) == moto_server.MAX_SHARD_ITERATORS
