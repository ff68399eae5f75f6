"""The twin's stream across its own lifetime: trimmed as DynamoDB trims it (24 hours, or a
count) with every sequence number kept, and not replayed by a restart that restores the tables.
Each test starts a twin of its own (the module of test_twin_event_source shares one)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from infra.twin import LocalTwin
from tests.twin.helpers import wait_until
from tests.twin.stream_handlers import SEEN
from tests.twin.streams import (
    batches_of,
    delivered,
    event_item,
    new_pk,
    options,
    sk,
    stream_records,
    streams_client,
)


def test_the_stream_is_trimmed_and_sequence_numbers_stay_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The moto server (a child process) reads its bounds from the environment.
    monkeypatch.setenv("TWIN_STREAM_MAX_RECORDS", "20")
    with LocalTwin.start(tmp_path, options=options()) as small:
        client = small.dynamodb_client()
        table = small.table_names["MEETINGS_TABLE"]
        pk = new_pk()
        for n in range(1, 51):
            client.put_item(TableName=table, Item=event_item(pk, n))
        wait_until(lambda: len(delivered(pk)) == 50)
        assert delivered(pk) == [sk(n) for n in range(1, 51)]
        numbers = {
            r["dynamodb"]["Keys"]["sk"]["S"]: r["dynamodb"]["SequenceNumber"]
            for b in batches_of(pk)
            for r in b.records
        }
        kept = stream_records(small)
        assert 1 <= len(kept) <= 20
        # What is left keeps the numbers it was delivered with, and ends with the last write.
        for record in kept:
            assert (
                numbers[record["dynamodb"]["Keys"]["sk"]["S"]]
                == record["dynamodb"]["SequenceNumber"]
            )
        assert kept[-1]["dynamodb"]["Keys"]["sk"]["S"] == sk(50)
        # A trimmed record is refused as DynamoDB refuses it.
        streams = streams_client(small)
        arn = client.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
        assert int(shard["SequenceNumberRange"]["StartingSequenceNumber"]) == int(
            kept[0]["dynamodb"]["SequenceNumber"]
        )
        with pytest.raises(streams.exceptions.TrimmedDataAccessException):
            streams.get_shard_iterator(
                StreamArn=arn,
                ShardId=shard["ShardId"],
                ShardIteratorType="AT_SEQUENCE_NUMBER",
                SequenceNumber=numbers[sk(1)],
            )
        # The next record takes the next number.
        client.put_item(TableName=table, Item=event_item(pk, 51))
        wait_until(lambda: sk(51) in delivered(pk))
        last = batches_of(pk)[-1].records[-1]["dynamodb"]["SequenceNumber"]
        assert int(last) == int(numbers[sk(50)]) + 1


def test_a_restart_on_the_same_data_folder_delivers_no_old_event(tmp_path: Path) -> None:
    pk = new_pk()
    with LocalTwin.start(tmp_path, options=options()) as first:
        client = first.dynamodb_client()
        table = first.table_names["MEETINGS_TABLE"]
        client.put_item(TableName=table, Item=event_item(pk, 1))
        wait_until(lambda: delivered(pk) == [sk(1)])
    SEEN.clear()
    with LocalTwin.start(tmp_path, options=options()) as second:
        client = second.dynamodb_client()
        table = second.table_names["MEETINGS_TABLE"]
        # The event item is back in the table (restored, through the stream as INSERTs)...
        restored = client.get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk(1)}})
        assert "Item" in restored
        time.sleep(0.3)
        assert delivered(pk) == []  # ...and not delivered again
        client.put_item(TableName=table, Item=event_item(pk, 2))
        wait_until(lambda: delivered(pk) == [sk(2)])
