"""The event source mapping's rules on their own (no twin): Lambda's filter syntax as far as
the twin implements it, and the batch rules the twin tests do not reach (no bisection, the
maximum record age, answers Lambda treats as a complete failure)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from infra.twin.event_source import (
    BatchDelivery,
    FilterPatternError,
    PendingRecord,
    check_filter,
    filter_matches,
    record_passes,
)
from infra.twin.lambda_runtime import LambdaInvocationError
from townhall import functions

OUTBOX_FILTER = functions.OUTBOX_DELIVERY.filters[0]


def record(event_name: str, sort_key: str, **dynamodb: Any) -> dict[str, Any]:
    return {
        "eventName": event_name,
        "dynamodb": {"Keys": {"pk": {"S": "M#1"}, "sk": {"S": sort_key}}, **dynamodb},
    }


def test_the_outbox_filter_takes_inserts_of_event_items_only() -> None:
    check_filter(OUTBOX_FILTER)
    assert filter_matches(OUTBOX_FILTER, record("INSERT", "E#000000000001#00"))
    assert not filter_matches(OUTBOX_FILTER, record("MODIFY", "E#000000000001#00"))
    assert not filter_matches(OUTBOX_FILTER, record("REMOVE", "E#000000000001#00"))
    assert not filter_matches(OUTBOX_FILTER, record("INSERT", "P#someone"))
    assert not filter_matches(OUTBOX_FILTER, record("INSERT", "XE#1"))
    assert not filter_matches(OUTBOX_FILTER, {"eventName": "INSERT"})  # a key missing
    assert not filter_matches(OUTBOX_FILTER, record("INSERT", "E#1") | {"dynamodb": "text"})


def test_exact_values_keep_their_type_and_arrays_match_any_element() -> None:
    assert filter_matches({"n": [1]}, {"n": 1.0})
    assert not filter_matches({"n": [1]}, {"n": True})
    assert not filter_matches({"b": [True]}, {"b": 1})
    assert filter_matches({"x": [None]}, {"x": None})
    assert not filter_matches({"x": ["1"]}, {"x": 1})
    assert filter_matches({"tags": ["b"]}, {"tags": ["a", "b"]})
    assert filter_matches({"s": [{"prefix": "ab"}, "zz"]}, {"s": "zz"})
    assert not filter_matches({"s": [{"prefix": "ab"}]}, {"s": 3})
    # Any one pattern of several; no patterns at all lets everything through.
    assert record_passes([{"a": [1]}, {"a": [2]}], {"a": 2})
    assert not record_passes([{"a": [1]}, {"a": [2]}], {"a": 3})
    assert record_passes([], {"anything": 1})


@pytest.mark.parametrize(
    "pattern",
    [
        {"eventName": [{"anything-but": ["REMOVE"]}]},
        {"n": [{"numeric": [">", 0]}]},
        {"x": [{"exists": True}]},
        {"s": [{"suffix": "#00"}]},
        {"s": [{"prefix": "a", "suffix": "b"}]},
        {"s": [{"prefix": 1}]},
        {"eventName": "INSERT"},  # Lambda wants a list
        {"eventName": []},
        {},
    ],
)
def test_patterns_the_twin_cannot_evaluate_are_refused(pattern: dict[str, Any]) -> None:
    with pytest.raises(FilterPatternError):
        check_filter(pattern)


# -- BatchDelivery with a scripted function --------------------------------------------------


class Script:
    """A function that answers from a list, one answer (or exception) per invocation."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.batches: list[list[int]] = []

    async def __call__(self, event: dict[str, Any]) -> Any:
        self.batches.append([int(r["dynamodb"]["SequenceNumber"]) for r in event["Records"]])
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, Exception):
            raise answer
        return answer


def pending(sequence: int, created: float = 1000.0) -> PendingRecord:
    event = {"dynamodb": {"ApproximateCreationDateTime": created, "SequenceNumber": str(sequence)}}
    return PendingRecord.of(event)


def failed() -> LambdaInvocationError:
    return LambdaInvocationError("f", "RuntimeError", "boom")


async def deliver(
    script: Script, records: list[PendingRecord], now: float = 1000.0, **changes: Any
) -> list[dict[str, Any]]:
    spec = dataclasses.replace(functions.OUTBOX_DELIVERY, **changes)
    failures: list[dict[str, Any]] = []

    async def no_wait(_seconds: float) -> None:
        return None

    delivery = BatchDelivery(
        spec,
        script,
        failures.append,
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
        shard_id="shardId-1",
        stream_arn="arn:stream",
        clock=lambda: now,
        sleep=no_wait,
    )
    await delivery.deliver(records)
    return failures


async def test_without_bisection_a_failing_batch_is_retried_whole_then_given_up_whole() -> None:
    script = Script(failed(), failed(), failed())
    failures = await deliver(script, [pending(1), pending(2), pending(3)], bisect_on_error=False)
    assert script.batches == [[1, 2, 3]] * 3
    (failure,) = failures
    info = failure["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        "1",
        "3",
        3,
    )
    assert failure["requestContext"]["approximateInvokeCount"] == 3


async def test_an_answer_naming_no_record_of_the_batch_fails_it_whole() -> None:
    bogus = {"batchItemFailures": [{"itemIdentifier": "999"}]}
    empty = {"batchItemFailures": [{"itemIdentifier": ""}]}
    script = Script(bogus, None, empty, None)
    failures = await deliver(script, [pending(1), pending(2)], retry_attempts=0)
    # Each complete failure bisects; the halves succeed (None) or fail again and give up.
    assert script.batches == [[1, 2], [1], [2]]
    assert [f["DDBStreamBatchInfo"]["startSequenceNumber"] for f in failures] == ["2"]


async def test_the_lowest_named_record_is_where_a_retry_starts() -> None:
    answer = {"batchItemFailures": [{"itemIdentifier": "4"}, {"itemIdentifier": "3"}]}
    script = Script(answer, {"batchItemFailures": []})
    assert await deliver(script, [pending(n) for n in range(1, 6)]) == []
    assert script.batches == [[1, 2, 3, 4, 5], [3, 4, 5]]


async def test_partial_answers_are_ignored_unless_the_mapping_reports_them() -> None:
    script = Script({"batchItemFailures": [{"itemIdentifier": "1"}]})
    assert await deliver(script, [pending(1)], report_batch_item_failures=False) == []
    assert script.batches == [[1]]


async def test_records_past_the_maximum_age_are_given_up_without_an_invocation() -> None:
    script = Script()
    old, young = pending(1, created=0.0), pending(2, created=900.0)
    failures = await deliver(script, [old, young], now=1000.0, max_record_age_seconds=300)
    assert script.batches == [[2]]
    (failure,) = failures
    assert failure["requestContext"]["condition"] == "RecordAgeExceeded"
    assert failure["requestContext"]["approximateInvokeCount"] == 0
    assert failure["responseContext"]["statusCode"] == 0
    assert failure["DDBStreamBatchInfo"]["approximateArrivalOfFirstRecord"] == (
        "1970-01-01T00:00:00Z"
    )
