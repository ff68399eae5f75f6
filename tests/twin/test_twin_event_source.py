"""The twin's event source mapping (event_source.py) over moto's real stream, through a real
twin: what reaches the consumer, in which shape and order, and what happens on failures.

The consumer is `tests.twin.stream_handlers.consumer` standing in for OUTBOX_FANOUT, so these
tests hold whatever the real consumer does. Each test writes under a partition key of its own
and reads only its own batches from `SEEN`.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    DynamoDBStreamLambdaOnFailureDestinationModel,
    DynamoDBStreamModel,
)

from infra.twin import LocalTwin
from infra.twin.event_source import PendingRecord
from tests.twin.helpers import wait_until
from tests.twin.streams import (
    SOURCE,
    batches_of,
    delivered,
    event_item,
    new_pk,
    options,
    put_all,
    sk,
    stream_records,
)
from townhall import functions


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTwin]:
    with LocalTwin.start(tmp_path_factory.mktemp("streams"), options=options()) as running:
        yield running


# -- what reaches the consumer ----------------------------------------------------------------


def test_only_inserts_of_event_items_arrive_in_lambdas_shape_and_commit_order(
    twin: LocalTwin,
) -> None:
    client = twin.dynamodb_client()
    table = twin.table_names["MEETINGS_TABLE"]
    pk = new_pk()
    before = time.time()
    client.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": "P#someone"}})
    first = event_item(pk, 1, blob={"B": b"\x00\xff"}, payload={"M": {"text": {"S": "hi"}}})
    client.put_item(TableName=table, Item=first)
    # A MODIFY and a REMOVE of an event item: filtered out.
    client.update_item(
        TableName=table,
        Key={"pk": {"S": pk}, "sk": {"S": sk(1)}},
        UpdateExpression="SET delivered = :t",
        ExpressionAttributeValues={":t": {"BOOL": True}},
    )
    client.delete_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk(1)}})
    client.put_item(TableName=table, Item=event_item(pk, 2))
    put_all(twin, [event_item(pk, 3), event_item(pk, 4)])
    client.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": "META"}, "seq": {"N": "4"}})

    wait_until(lambda: len(delivered(pk)) >= 4)
    time.sleep(0.2)  # anything else that would arrive (it must not)
    assert delivered(pk) == [sk(1), sk(2), sk(3), sk(4)]

    records = [r for b in batches_of(pk) for r in b.records]
    numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert numbers == sorted(numbers) and len(set(numbers)) == 4
    stream_arn = client.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    for record in records:
        assert list(record) == [
            "eventID",
            "eventName",
            "eventVersion",
            "eventSource",
            "awsRegion",
            "dynamodb",
            "eventSourceARN",
        ]
        assert record["eventName"] == "INSERT"
        assert record["eventVersion"] == "1.1"
        assert record["eventSource"] == "aws:dynamodb"
        assert record["awsRegion"] == "us-east-1"
        assert record["eventSourceARN"] == stream_arn
        assert len(record["eventID"]) == 32
        dynamodb = record["dynamodb"]
        assert list(dynamodb) == [
            "ApproximateCreationDateTime",
            "Keys",
            "NewImage",
            "SequenceNumber",
            "SizeBytes",
            "StreamViewType",
        ]
        created = dynamodb["ApproximateCreationDateTime"]
        assert isinstance(created, float) and created == int(created)
        assert before - 1 <= created <= time.time()
        assert isinstance(dynamodb["SizeBytes"], int) and dynamodb["SizeBytes"] > 0
        assert dynamodb["StreamViewType"] == "NEW_IMAGE"
        assert dynamodb["Keys"] == {"pk": {"S": pk}, "sk": dynamodb["NewImage"]["sk"]}
    # The image as written; binary values in base64, as on the wire.
    assert records[0]["dynamodb"]["NewImage"] == {**first, "blob": {"B": "AP8="}}
    # Powertools' model of Lambda's DynamoDB Streams event takes it as it is.
    DynamoDBStreamModel.model_validate({"Records": records})


def test_a_partial_batch_failure_redelivers_from_that_record_and_nothing_earlier(
    twin: LocalTwin,
) -> None:
    pk = new_pk()
    put_all(twin, [event_item(pk, n, "fail-once" if n == 3 else None) for n in range(1, 7)])
    wait_until(lambda: len(batches_of(pk)) >= 2)
    time.sleep(0.2)
    assert [b.sort_keys for b in batches_of(pk)] == [
        [sk(n) for n in range(1, 7)],
        [sk(n) for n in range(3, 7)],
    ]
    assert not [f for f in twin.stream_failures(SOURCE) if _failure_pk(twin, f) == pk]


def test_a_poisoned_record_is_bisected_out_to_the_failure_destination_and_later_ones_flow(
    twin: LocalTwin,
) -> None:
    pk = new_pk()
    put_all(twin, [event_item(pk, n, "poison" if n == 5 else None) for n in range(1, 9)])
    wait_until(lambda: batches_of(pk))
    twin.dynamodb_client().put_item(
        TableName=twin.table_names["MEETINGS_TABLE"], Item=event_item(pk, 9)
    )
    wait_until(lambda: sk(9) in delivered(pk))
    # Halves, first half first; the poisoned record alone is tried 1 + retry_attempts times
    # (splits do not count), then given up; the rest of the batch and later records go on.
    expected = [
        list(range(1, 9)),
        [1, 2, 3, 4],
        [5, 6, 7, 8],
        [5, 6],
        [5],
        [5],
        [5],
        [6],
        [7, 8],
        [9],
    ]
    assert functions.OUTBOX_DELIVERY.retry_attempts == 2
    assert [b.sort_keys for b in batches_of(pk)] == [[sk(n) for n in e] for e in expected]

    poisoned = next(
        r for b in batches_of(pk) for r in b.records if r["dynamodb"]["Keys"]["sk"]["S"] == sk(5)
    )
    failures = [f for f in twin.stream_failures(SOURCE) if _failure_pk(twin, f) == pk]
    assert len(failures) == 1
    failure = failures[0]
    info = failure["DDBStreamBatchInfo"]
    sequence = poisoned["dynamodb"]["SequenceNumber"]
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == sequence
    assert info["batchSize"] == 1
    assert info["streamArn"] == poisoned["eventSourceARN"]
    assert info["shardId"].startswith("shardId-")
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["functionArn"] == (
        "arn:aws:lambda:us-east-1:123456789012:function:townhall-OutboxFanoutFunction"
    )
    assert failure["requestContext"]["approximateInvokeCount"] == 6  # every batch it was in
    assert failure["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert failure["version"] == "1.0"
    DynamoDBStreamLambdaOnFailureDestinationModel.model_validate(failure)
    # The same record, as a JSON line, in the data folder.
    lines = (twin.data_dir / "failures" / f"{SOURCE}.jsonl").read_text().splitlines()
    assert failure in [json.loads(line) for line in lines]


def _failure_pk(twin: LocalTwin, failure: dict[str, Any]) -> str:
    """The partition key of a failure record's first record, read back from the stream (as
    an operator would, the failure record holds only its place)."""
    wanted = failure["DDBStreamBatchInfo"]["startSequenceNumber"]
    for record in stream_records(twin):
        if record["dynamodb"]["SequenceNumber"] == wanted:
            return str(record["dynamodb"]["Keys"]["pk"]["S"])
    return ""


def test_lanes_run_in_parallel_but_one_key_at_a_time_in_order(twin: LocalTwin) -> None:
    lanes = functions.OUTBOX_DELIVERY.parallelization_factor
    pks: list[str] = []
    seen_lanes: set[int] = set()
    for _ in range(1000):  # four keys that land in four different lanes
        pk = new_pk()
        lane = _lane(pk, lanes)
        if lane not in seen_lanes:
            seen_lanes.add(lane)
            pks.append(pk)
        if len(pks) == 4:
            break
    client = twin.dynamodb_client()
    table = twin.table_names["MEETINGS_TABLE"]
    for n in range(1, 6):
        for pk in pks:
            client.put_item(TableName=table, Item=event_item(pk, n, "slow"))
    wait_until(lambda: all(len(delivered(pk)) == 5 for pk in pks), timeout=10)
    spans: list[tuple[float, float]] = []
    for pk in pks:
        assert delivered(pk) == [sk(n) for n in range(1, 6)]
        own = sorted((b.started, b.ended) for b in batches_of(pk))
        # One key's next batch starts only after its previous one returned.
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(own))
        spans += own
    spans.sort()
    assert any(b_start < a_end for (_, a_end), (b_start, _) in itertools.pairwise(spans))


def _lane(pk: str, lanes: int) -> int:
    import zlib

    return zlib.crc32(json.dumps({"S": pk}, sort_keys=True).encode()) % lanes


# -- the stream itself ----------------------------------------------------------------------


def test_a_cancelled_transaction_leaves_no_stream_record(twin: LocalTwin) -> None:
    client = twin.dynamodb_client()
    table = twin.table_names["MEETINGS_TABLE"]
    pk = new_pk()
    client.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": "META"}, "seq": {"N": "1"}})
    client.put_item(TableName=table, Item=event_item(pk, 1))
    wait_until(lambda: delivered(pk) == [sk(1)])
    before = stream_records(twin)
    with pytest.raises(client.exceptions.TransactionCanceledException):
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": event_item(pk, 2)}},
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": pk}, "sk": {"S": "META"}},
                        "UpdateExpression": "SET seq = :two",
                        "ExpressionAttributeValues": {":two": {"N": "2"}},
                    }
                },
                {"Delete": {"TableName": table, "Key": {"pk": {"S": pk}, "sk": {"S": sk(1)}}}},
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": {"pk": {"S": pk}, "sk": {"S": "P#nobody"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    after = stream_records(twin)
    assert [r["eventID"] for r in after] == [r["eventID"] for r in before]
    meta = client.get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": "META"}})["Item"]
    assert meta["seq"] == {"N": "1"}
    assert "Item" in client.get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk(1)}})
    # The next write is delivered, and nothing of the cancelled one ever was.
    client.put_item(TableName=table, Item=event_item(pk, 3))
    wait_until(lambda: sk(3) in delivered(pk))
    assert delivered(pk) == [sk(1), sk(3)]
    last = int(before[-1]["dynamodb"]["SequenceNumber"])
    assert int(batches_of(pk)[-1].records[0]["dynamodb"]["SequenceNumber"]) == last + 1


def test_a_pending_record_knows_its_age_and_size() -> None:
    event = {"dynamodb": {"ApproximateCreationDateTime": 1700000000.0, "SequenceNumber": "12"}}
    record = PendingRecord.of(event)
    assert (record.sequence, record.created, record.invocations) == (12, 1700000000.0, 0)
    assert record.size == len(json.dumps(event, separators=(",", ":")))
