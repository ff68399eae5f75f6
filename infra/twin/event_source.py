"""The twin's event source mappings: a DynamoDB stream into a Lambda function, as Lambda does it.

In AWS, Lambda's event source mapping reads each shard of a table's stream, filters the
records, batches them and invokes the function synchronously, retrying as configured. The twin
does the same from moto's stream of the same writes, for every `StreamSourceSpec` in
`townhall.functions.ALL_STREAM_SOURCES` (the one the CDK stack builds its mappings from), so
the consumer handler gets the same events with the same batching and the same retries:

- **Reading**: the DynamoDB Streams API on the twin's moto server (DescribeStream,
  GetShardIterator, GetRecords, through boto3), from the end of each shard (LATEST) as it is
  when the twin starts, i.e. after the tables were restored from the data folder: a restart
  never delivers old events as new ones (nor anything written while the twin was stopped). An
  idle shard is polled every 15 ms, and read again at once while records keep coming. Lambda
  polls each shard 4 times a second when idle, so in AWS an event written to an idle stream
  waits up to ~250 ms more before the function starts than it does here.
- **Filtering**: `spec.filters`, Lambda's filter syntax (any one pattern matches): nested
  maps, and lists of exact values or `{"prefix": ...}`. Any other operator is refused when the
  twin starts, rather than silently matching differently. A record that matches no filter
  counts as processed, as in Lambda.
- **Batching**: at most `batch_size` records (and 6 MB) per invocation; with a batching window
  of 0 the function is invoked as soon as records are there, otherwise up to that long for a
  full batch. The event is `{"Records": [...]}` with Lambda's record shape (`lambda_record`).
- **Parallelization**: `parallelization_factor` lanes per shard, each delivering one batch at
  a time; a record's lane is a hash of its partition key, so one key's records are always in
  one lane, in stream order, and the next batch of a key starts only after the previous one
  returned.
- **Failures**, as Lambda's mapping for DynamoDB streams: an error or a timeout fails the whole
  batch; with `bisect_on_error` a failed batch is split in halves (first half first), which
  does not count as a retry; a single record (or an unsplittable batch) is retried up to
  `retry_attempts` times; with `report_batch_item_failures` an answer
  `{"batchItemFailures": [{"itemIdentifier": <SequenceNumber>}]}` marks the records before the
  lowest named one done and retries from it (counted as a retry); an answer naming a record
  that is not in the batch, or an empty identifier, fails the whole batch. Records older than
  `max_record_age_seconds` are not invoked again. What gives up goes to the failure
  destination as Lambda's on-failure invocation record (`failure_record`), and the lane moves
  on: later records, of the same key too, are not blocked.
- **Failure destination**: in AWS an SQS queue; in the twin the records are kept in memory
  (`EventSources.failures`, the last 10,000 per source; `LocalTwin.stream_failures`) and
  appended as JSON lines to `<data>/failures/<source logical id>.jsonl` (rolled over to
  `.jsonl.1` past 16 MiB).

Every queue, retry and wait is bounded: a lane holds at most 10,000 records (the reader waits
when it is full, as Lambda stops reading a shard whose batches are behind), a batch is retried
a bounded number of times, and stopping waits at most `STOP_GRACE_SECONDS` for batches in
flight. Records read but not yet delivered when the twin stops are dropped (the twin keeps no
checkpoint; the next start reads from the end again).

Everything runs on one thread of its own with an asyncio loop; the invocations go through the
twin's `LocalLambdaRuntime`, like every other invocation.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib.util
import json
import logging
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from infra.twin.dynamodb import table_name
from infra.twin.dynamodb_snapshot import item_to_disk
from infra.twin.fake_aws import ACCOUNT_ID, REGION, fake_session, iso8601
from infra.twin.lambda_runtime import LambdaInvocationError, LocalLambdaRuntime, function_name
from townhall.functions import StreamSourceSpec

log = logging.getLogger(__name__)

# An idle shard is read this often (Lambda: 4 times a second, see the module docstring).
POLL_INTERVAL_SECONDS = 0.015
# After a failed GetRecords (moto restarting, say), before the next try.
READ_ERROR_BACKOFF_SECONDS = 0.5
# GetRecords' own maximum.
GET_RECORDS_LIMIT = 1000
# Records a lane holds before the reader waits for it.
LANE_QUEUE_RECORDS = 10_000
# Lambda's limit on a synchronous invocation's payload.
MAX_BATCH_BYTES = 6 * 1024 * 1024
# Between two tries of the same records: doubling from the first, up to the last.
RETRY_BACKOFF_FIRST_SECONDS = 0.02
RETRY_BACKOFF_MAX_SECONDS = 1.0
# How long stopping waits for batches in flight before abandoning them.
STOP_GRACE_SECONDS = 5.0
START_TIMEOUT_SECONDS = 30.0
# Failure records kept in memory per source, and the size at which its file rolls over.
MAX_FAILURES_KEPT = 10_000
FAILURE_FILE_MAX_BYTES = 16 * 1024 * 1024
# The filter operators implemented here (Lambda has more: anything-but, numeric, exists...).
SUPPORTED_FILTER_OPERATORS = frozenset({"prefix"})
# Lambda's limits on the mapping's settings (CreateEventSourceMapping, DynamoDB streams).
MAX_BATCH_SIZE = 10_000
MAX_PARALLELIZATION_FACTOR = 10
MAX_RETRY_ATTEMPTS = 10_000
MAX_RECORD_AGE_SECONDS = 604_800
MAX_BATCHING_WINDOW_SECONDS = 300

Invoke = Callable[[dict[str, Any]], Awaitable[Any]]


class FilterPatternError(ValueError):
    """A filter pattern the twin cannot evaluate as Lambda would (or that Lambda refuses)."""


# -- filters ------------------------------------------------------------------------------------


def check_filter(pattern: Any, where: str = "pattern") -> None:
    """Raise FilterPatternError unless `pattern` uses only what `filter_matches` implements."""
    if not isinstance(pattern, Mapping) or not pattern:
        raise FilterPatternError(f"{where}: a filter pattern is a non-empty map")
    for key, value in pattern.items():
        inner = f"{where}.{key}"
        if isinstance(value, Mapping):
            check_filter(value, inner)
        elif isinstance(value, list) and value:
            for entry in value:
                _check_leaf(entry, inner)
        else:
            raise FilterPatternError(f"{inner}: a pattern's value is a map or a non-empty list")


def _check_leaf(entry: Any, where: str) -> None:
    if entry is None or isinstance(entry, str | int | float | bool):
        return
    if isinstance(entry, Mapping) and len(entry) == 1:
        ((operator, operand),) = entry.items()
        if operator not in SUPPORTED_FILTER_OPERATORS:
            raise FilterPatternError(
                f"{where}: the twin does not implement the filter operator {operator!r} "
                f"(it implements exact values and {sorted(SUPPORTED_FILTER_OPERATORS)})"
            )
        if not isinstance(operand, str):
            raise FilterPatternError(f"{where}: {operator!r} takes a string")
        return
    raise FilterPatternError(f"{where}: {entry!r} is neither a value nor one operator")


def filter_matches(pattern: Mapping[str, Any], value: Any) -> bool:
    """Lambda's (EventBridge's) matching of one pattern against a record: every key of the
    pattern must be present; a map descends, a list matches when any of its entries matches
    the value (or, for an array in the record, any of its elements)."""
    if not isinstance(value, Mapping):
        return False
    for key, expected in pattern.items():
        if key not in value:
            return False
        actual = value[key]
        if isinstance(expected, Mapping):
            if not filter_matches(expected, actual):
                return False
            continue
        candidates = actual if isinstance(actual, list) else [actual]
        if not any(_leaf_matches(entry, c) for entry in expected for c in candidates):
            return False
    return True


def _leaf_matches(entry: Any, actual: Any) -> bool:
    if isinstance(entry, Mapping):
        prefix = entry["prefix"]  # the only operator check_filter lets through
        return isinstance(actual, str) and actual.startswith(prefix)
    if isinstance(entry, bool) or isinstance(actual, bool) or entry is None or actual is None:
        return entry is actual
    if isinstance(entry, int | float) and isinstance(actual, int | float):
        return entry == actual
    return type(entry) is type(actual) and bool(entry == actual)


def record_passes(filters: Sequence[Mapping[str, Any]], record: Mapping[str, Any]) -> bool:
    """No filters: every record; else the record matches at least one pattern."""
    return not filters or any(filter_matches(pattern, record) for pattern in filters)


# -- records and events -------------------------------------------------------------------------


def _epoch_seconds(value: Any) -> float:
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    return float(value)


def lambda_record(raw: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record (as boto3 parses it) in the shape Lambda hands the function.

    Lambda's record: eventID, eventName, eventVersion "1.1", eventSource "aws:dynamodb",
    awsRegion, dynamodb {ApproximateCreationDateTime (epoch seconds, whole, as a number), Keys,
    NewImage/OldImage (as the view type has them), SequenceNumber, SizeBytes,
    StreamViewType}, eventSourceARN (the stream's ARN), and userIdentity for TTL deletions.
    Attribute values stay in DynamoDB JSON, binary ones in base64 as on the wire.
    """
    source = raw["dynamodb"]
    dynamodb: dict[str, Any] = {}
    if "ApproximateCreationDateTime" in source:
        dynamodb["ApproximateCreationDateTime"] = float(
            int(_epoch_seconds(source["ApproximateCreationDateTime"]))
        )
    dynamodb["Keys"] = item_to_disk(source["Keys"])
    for image in ("NewImage", "OldImage"):
        if image in source:
            dynamodb[image] = item_to_disk(source[image])
    dynamodb["SequenceNumber"] = source["SequenceNumber"]
    dynamodb["SizeBytes"] = source["SizeBytes"]
    dynamodb["StreamViewType"] = source["StreamViewType"]
    record: dict[str, Any] = {
        "eventID": raw["eventID"],
        "eventName": raw["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": raw.get("awsRegion", REGION),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }
    identity = raw.get("userIdentity")
    if identity:
        record["userIdentity"] = {
            "type": identity.get("Type"),
            "principalId": identity.get("PrincipalId"),
        }
    return record


@dataclass(eq=False)
class PendingRecord:
    """A record on its way to the function, with what the retry rules need to know."""

    event: dict[str, Any]
    sequence: int
    created: float  # epoch seconds (ApproximateCreationDateTime)
    size: int  # bytes of its JSON in the event
    invocations: int = 0
    # The responseContext of the last invocation it was part of (None: never invoked).
    response: Mapping[str, Any] | None = None

    @classmethod
    def of(cls, event: dict[str, Any], now: float | None = None) -> PendingRecord:
        dynamodb = event["dynamodb"]
        created = dynamodb.get("ApproximateCreationDateTime")
        return cls(
            event=event,
            sequence=int(dynamodb["SequenceNumber"]),
            created=float(created) if created is not None else (now or time.time()),
            size=len(json.dumps(event, separators=(",", ":"))),
        )


def _iso_seconds(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(int(epoch), datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def failure_record(
    records: Sequence[PendingRecord],
    condition: str,
    *,
    function_arn: str,
    shard_id: str,
    stream_arn: str,
    response: Mapping[str, Any] | None,
    now: float | None = None,
) -> dict[str, Any]:
    """Lambda's on-failure invocation record for a stream source: where the records are in
    the stream (not the records: an operator reads them from the stream within its 24 hours).

    `condition` is "RetryAttemptsExhausted" or "RecordAgeExceeded"; `response` is the last
    invocation's responseContext (statusCode, executedVersion, and functionError "Unhandled"
    when it failed); records that were never invoked report statusCode 0.
    """
    first, last = records[0], records[-1]
    moment = time.time() if now is None else now
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": first.invocations,
        },
        "responseContext": dict(response or {"statusCode": 0, "executedVersion": "$LATEST"}),
        "version": "1.0",
        "timestamp": iso8601(int(moment * 1000)),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": first.event["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": last.event["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": _iso_seconds(first.created),
            "approximateArrivalOfLastRecord": _iso_seconds(last.created),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }


# -- one batch ------------------------------------------------------------------------------------

_SUCCEEDED: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
_UNHANDLED: dict[str, Any] = {**_SUCCEEDED, "functionError": "Unhandled"}


@dataclass(frozen=True)
class _Outcome:
    failed_from: int | None  # None: every record done; else the first one to try again
    error: bool  # the invocation failed as a whole (bisection applies)
    response: Mapping[str, Any]


class _InvalidAnswer(Exception):
    pass


def first_failure(answer: Any, records: Sequence[PendingRecord]) -> int | None:
    """The index of the lowest record a partial batch response names, None for success;
    raises _InvalidAnswer for an answer Lambda treats as a complete failure."""
    if not isinstance(answer, Mapping):
        return None  # null, or nothing Lambda reads: success
    failures = answer.get("batchItemFailures")
    if failures is None or failures == []:
        return None
    if not isinstance(failures, list):
        raise _InvalidAnswer("batchItemFailures is not a list")
    positions = {r.event["dynamodb"]["SequenceNumber"]: i for i, r in enumerate(records)}
    indexes: list[int] = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not isinstance(identifier, str) or identifier not in positions:
            raise _InvalidAnswer(f"itemIdentifier {identifier!r} names no record of the batch")
        indexes.append(positions[identifier])
    return min(indexes)


class BatchDelivery:
    """Delivers one batch with Lambda's rules for a stream source: retries, bisection, partial
    batch responses, maximum record age, and the failure destination (see the module
    docstring). `invoke` raises LambdaInvocationError when the invocation fails."""

    def __init__(
        self,
        spec: StreamSourceSpec,
        invoke: Invoke,
        on_failure: Callable[[dict[str, Any]], None],
        *,
        function_arn: str,
        shard_id: str,
        stream_arn: str,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.spec = spec
        self._invoke = invoke
        self._on_failure = on_failure
        self._function_arn = function_arn
        self._shard_id = shard_id
        self._stream_arn = stream_arn
        self._clock = clock
        self._sleep = sleep

    async def deliver(self, batch: list[PendingRecord]) -> None:
        """Until every record is done or given up. Bounded: a split makes two smaller
        segments, and every other failure either shortens a segment or spends one of its
        `retry_attempts`."""
        work: deque[tuple[list[PendingRecord], int]] = deque([(batch, 0)])
        while work:
            segment, retries = work.popleft()
            segment = self._fresh(segment)
            if not segment:
                continue
            outcome = await self._try(segment)
            if outcome.failed_from is None:
                continue
            if outcome.error and self.spec.bisect_on_error and len(segment) > 1:
                half = len(segment) // 2
                work.appendleft((segment[half:], retries))
                work.appendleft((segment[:half], retries))
                continue
            failed = segment[outcome.failed_from :]
            if retries >= self.spec.retry_attempts:
                self._give_up(failed, "RetryAttemptsExhausted", outcome.response)
                continue
            await self._sleep(
                min(RETRY_BACKOFF_MAX_SECONDS, RETRY_BACKOFF_FIRST_SECONDS * 2**retries)
            )
            work.appendleft((failed, retries + 1))

    def _fresh(self, segment: list[PendingRecord]) -> list[PendingRecord]:
        """The segment without records past the maximum age, which are given up."""
        max_age = self.spec.max_record_age_seconds
        if max_age < 0:  # Lambda's -1: no limit
            return segment
        now = self._clock()
        expired = [r for r in segment if now - r.created > max_age]
        if not expired:
            return segment
        self._give_up(expired, "RecordAgeExceeded", expired[0].response)
        return [r for r in segment if now - r.created <= max_age]

    async def _try(self, segment: list[PendingRecord]) -> _Outcome:
        for record in segment:
            record.invocations += 1
        event = {"Records": [r.event for r in segment]}
        outcome = await self._outcome(segment, event)
        for record in segment:
            record.response = outcome.response
        return outcome

    async def _outcome(self, segment: list[PendingRecord], event: dict[str, Any]) -> _Outcome:
        try:
            answer = await self._invoke(event)
        except LambdaInvocationError as exc:
            log.warning(
                "%s: a batch of %d failed (%s: %s)",
                self.spec.logical_id,
                len(segment),
                exc.error_type,
                exc.error_message[:200],
            )
            return _Outcome(0, True, _UNHANDLED)
        except Exception:  # the emulator's own failure: treated as the function's
            log.exception("%s: invoking %s failed", self.spec.logical_id, self._function_arn)
            return _Outcome(0, True, _UNHANDLED)
        if not self.spec.report_batch_item_failures:
            return _Outcome(None, False, _SUCCEEDED)
        try:
            index = first_failure(answer, segment)
        except _InvalidAnswer as exc:
            log.warning("%s: %s; the whole batch failed", self.spec.logical_id, exc)
            return _Outcome(0, True, _SUCCEEDED)
        return _Outcome(index, False, _SUCCEEDED)

    def _give_up(
        self, records: list[PendingRecord], condition: str, response: Mapping[str, Any] | None
    ) -> None:
        record = failure_record(
            records,
            condition,
            function_arn=self._function_arn,
            shard_id=self._shard_id,
            stream_arn=self._stream_arn,
            response=response,
            now=self._clock(),
        )
        info = record["DDBStreamBatchInfo"]
        log.error(
            "%s: %d record(s) %s..%s go to the failure destination (%s)",
            self.spec.logical_id,
            len(records),
            info["startSequenceNumber"],
            info["endSequenceNumber"],
            condition,
        )
        self._on_failure(record)


# -- the failure destination -----------------------------------------------------------------


class FailureDestination:
    """Where a source's given-up records go: memory (the last MAX_FAILURES_KEPT) and a JSON
    lines file, if there is a data folder. Written from the pollers' thread, read from any."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._records: deque[dict[str, Any]] = deque(maxlen=MAX_FAILURES_KEPT)

    def send(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            self._records.append(record)
            if self.path is None:
                return
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if self.path.exists() and self.path.stat().st_size > FAILURE_FILE_MAX_BYTES:
                    self.path.replace(self.path.with_name(self.path.name + ".1"))
                with self.path.open("a", encoding="utf-8") as file:
                    file.write(line)
            except OSError:
                log.exception("could not append to %s", self.path)

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(json.dumps(r)) for r in self._records]


# -- one stream source ---------------------------------------------------------------------------


class _Lane:
    """One of a shard's `parallelization_factor` lanes: its records in stream order."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[PendingRecord] = asyncio.Queue(maxsize=LANE_QUEUE_RECORDS)
        self.carry: PendingRecord | None = None  # read, but did not fit the last batch
        self.busy = False
        self.task: asyncio.Task[None] | None = None

    async def next_batch(self, size: int, window: float) -> list[PendingRecord]:
        first = self.carry if self.carry is not None else await self.queue.get()
        self.carry = None
        batch, total = [first], first.size
        loop = asyncio.get_running_loop()
        deadline = loop.time() + window
        while len(batch) < size:
            if self.queue.empty():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    record = await asyncio.wait_for(self.queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                record = self.queue.get_nowait()
            if total + record.size > MAX_BATCH_BYTES:
                self.carry = record
                break
            batch.append(record)
            total += record.size
        return batch


@dataclass
class _Shard:
    shard_id: str
    iterator: str | None
    lanes: list[_Lane]
    last_sequence: str | None = None
    reader: asyncio.Task[None] | None = None


class StreamPoller:
    """Lambda's event source mapping for one StreamSourceSpec (one table's stream)."""

    def __init__(
        self,
        spec: StreamSourceSpec,
        runtime: LocalLambdaRuntime,
        streams: Any,
        dynamodb: Any,
        failures: FailureDestination,
    ) -> None:
        self.spec = spec
        self._runtime = runtime
        self._streams = streams  # boto3 dynamodbstreams client
        self._dynamodb = dynamodb  # boto3 dynamodb client
        self._failures = failures
        self._function_arn = (
            f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:"
            f"{function_name(runtime.spec(spec.function.logical_id))}"
        )
        self._partition_key = spec.table.partition_key.name
        self._shards: list[_Shard] = []
        self._stream_arn = ""
        self._stopping = False

    async def start(self) -> None:
        """Find the stream and take each shard's end as the place to read from."""
        table = table_name(self.spec.table)
        described = await asyncio.to_thread(self._dynamodb.describe_table, TableName=table)
        stream_arn = described["Table"].get("LatestStreamArn")
        if not stream_arn:
            raise RuntimeError(f"{table} has no stream (TableSpec.stream_view is not set)")
        self._stream_arn = stream_arn
        stream = await asyncio.to_thread(self._streams.describe_stream, StreamArn=stream_arn)
        for shard in stream["StreamDescription"]["Shards"]:
            if "EndingSequenceNumber" in shard.get("SequenceNumberRange", {}):
                continue  # closed: everything in it predates this start
            answer = await asyncio.to_thread(
                self._streams.get_shard_iterator,
                StreamArn=stream_arn,
                ShardId=shard["ShardId"],
                ShardIteratorType="LATEST",
            )
            lanes = [_Lane() for _ in range(self.spec.parallelization_factor)]
            self._shards.append(_Shard(shard["ShardId"], answer["ShardIterator"], lanes))
        for state in self._shards:
            delivery = BatchDelivery(
                self.spec,
                self._invoke,
                self._failures.send,
                function_arn=self._function_arn,
                shard_id=state.shard_id,
                stream_arn=stream_arn,
            )
            for lane in state.lanes:
                lane.task = asyncio.create_task(self._deliver(lane, delivery))
            state.reader = asyncio.create_task(self._read(state))
        log.info(
            "%s: polling %s (%d shard(s)) for %s",
            self.spec.logical_id,
            stream_arn,
            len(self._shards),
            self.spec.function.logical_id,
        )

    async def stop(self, grace: float) -> None:
        """Stop reading; let batches in flight finish for up to `grace` seconds."""
        self._stopping = True
        tasks: list[asyncio.Task[None]] = []
        for state in self._shards:
            if state.reader is not None:
                state.reader.cancel()
                tasks.append(state.reader)
            for lane in state.lanes:
                if lane.task is None:
                    continue
                if not lane.busy:
                    lane.task.cancel()
                tasks.append(lane.task)
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _invoke(self, event: dict[str, Any]) -> Any:
        return await self._runtime.invoke(self.spec.function.logical_id, event)

    def _lane_of(self, state: _Shard, record: Mapping[str, Any]) -> _Lane:
        key = record["dynamodb"]["Keys"].get(self._partition_key)
        digest = zlib.crc32(json.dumps(key, sort_keys=True).encode())
        return state.lanes[digest % len(state.lanes)]

    async def _read(self, state: _Shard) -> None:
        """Poll one shard until stopped; hand each record that passes the filters to its lane."""
        while not self._stopping:
            if state.iterator is None:
                log.warning("%s: shard %s closed", self.spec.logical_id, state.shard_id)
                return
            try:
                answer = await asyncio.to_thread(
                    self._streams.get_records, ShardIterator=state.iterator, Limit=GET_RECORDS_LIMIT
                )
            except ClientError as exc:
                state.iterator = await self._reposition(state, exc)
                continue
            except BotoCoreError:
                log.exception("%s: reading the stream failed", self.spec.logical_id)
                await asyncio.sleep(READ_ERROR_BACKOFF_SECONDS)
                continue
            records = answer.get("Records", [])
            state.iterator = answer.get("NextShardIterator")
            for raw in records:
                try:
                    record = lambda_record(raw, self._stream_arn)
                except (KeyError, TypeError, ValueError):  # moto's, not the function's
                    log.exception("%s: skipping an unreadable stream record", self.spec.logical_id)
                    continue
                state.last_sequence = record["dynamodb"]["SequenceNumber"]
                if not record_passes(self.spec.filters, record):
                    continue
                # Waits only when the lane is full (its batches are behind).
                await self._lane_of(state, record).queue.put(PendingRecord.of(record))
            if not records:
                await asyncio.sleep(POLL_INTERVAL_SECONDS)

    async def _reposition(self, state: _Shard, exc: ClientError) -> str | None:
        """A new iterator after GetRecords refused ours: past the last record read when it
        expired, else (records trimmed before they were read) the oldest still there."""
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ExpiredIteratorException" and state.last_sequence is not None:
            position: dict[str, str] = {
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "SequenceNumber": state.last_sequence,
            }
        elif code == "ExpiredIteratorException":
            position = {"ShardIteratorType": "LATEST"}
        else:
            log.error(
                "%s: the stream refused the read (%s): %s; reading from its oldest record",
                self.spec.logical_id,
                code,
                exc,
            )
            await asyncio.sleep(READ_ERROR_BACKOFF_SECONDS)
            position = {"ShardIteratorType": "TRIM_HORIZON"}
        try:
            answer = await asyncio.to_thread(
                self._streams.get_shard_iterator,
                StreamArn=self._stream_arn,
                ShardId=state.shard_id,
                **position,
            )
        except (ClientError, BotoCoreError):
            log.exception("%s: no new shard iterator", self.spec.logical_id)
            await asyncio.sleep(READ_ERROR_BACKOFF_SECONDS)
            return state.iterator
        iterator: str = answer["ShardIterator"]
        return iterator

    async def _deliver(self, lane: _Lane, delivery: BatchDelivery) -> None:
        window = float(self.spec.batching_window_seconds)
        while not self._stopping:
            batch = await lane.next_batch(self.spec.batch_size, window)
            lane.busy = True
            try:
                await delivery.deliver(batch)
            except Exception:  # a bug here must not stop the lane for good
                log.exception("%s: delivering a batch failed", self.spec.logical_id)
            finally:
                lane.busy = False


# -- every source of a twin ------------------------------------------------------------------


def check_source(spec: StreamSourceSpec, runtime: LocalLambdaRuntime) -> None:
    """Refuse, at start, a source the twin would not run as Lambda does."""
    name = spec.logical_id
    for index, pattern in enumerate(spec.filters):
        check_filter(pattern, f"{name}.filters[{index}]")
    if not 1 <= spec.batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"{name}: batch_size must be 1..{MAX_BATCH_SIZE}")
    if not 1 <= spec.parallelization_factor <= MAX_PARALLELIZATION_FACTOR:
        raise ValueError(f"{name}: parallelization_factor must be 1..{MAX_PARALLELIZATION_FACTOR}")
    if not 0 <= spec.batching_window_seconds <= MAX_BATCHING_WINDOW_SECONDS:
        raise ValueError(
            f"{name}: batching_window_seconds must be 0..{MAX_BATCHING_WINDOW_SECONDS}"
        )
    if not 0 <= spec.retry_attempts <= MAX_RETRY_ATTEMPTS:
        # Lambda's -1 (retry until the record expires) would hold a lane for a day here.
        raise ValueError(f"{name}: retry_attempts must be 0..{MAX_RETRY_ATTEMPTS} in the twin")
    age = spec.max_record_age_seconds
    if age != -1 and not 60 <= age <= MAX_RECORD_AGE_SECONDS:
        raise ValueError(
            f"{name}: max_record_age_seconds must be -1 or 60..{MAX_RECORD_AGE_SECONDS}"
        )
    if spec.table.stream_view is None:
        raise ValueError(f"{name}: table {spec.table.logical_id} has no stream_view")
    logical_id = spec.function.logical_id
    try:
        path = runtime.handler_path(logical_id)
    except KeyError:
        raise ValueError(
            f"{name}: function {logical_id} is not among the twin's functions"
        ) from None
    module = path.rpartition(".")[0]
    try:
        found = importlib.util.find_spec(module) is not None
    except ImportError:
        found = False
    if not found:
        raise RuntimeError(
            f"{name}: the handler module {module} of {logical_id} does not exist; override it "
            "(TwinOptions.handler_overrides) or run without the source (TwinOptions.stream_sources)"
        )


class EventSources:
    """The twin's stream pollers, on a thread and event loop of their own, started before the
    twin serves (so nothing written through it is missed) and stopped before it stops."""

    def __init__(
        self,
        specs: Iterable[StreamSourceSpec],
        runtime: LocalLambdaRuntime,
        *,
        dynamodb_endpoint: str,
        failures_dir: Path | None,
    ) -> None:
        self.specs = tuple(specs)
        self._runtime = runtime
        self._endpoint = dynamodb_endpoint
        self._destinations = {
            spec.logical_id: FailureDestination(
                None if failures_dir is None else failures_dir / f"{spec.logical_id}.jsonl"
            )
            for spec in self.specs
        }
        self._pollers: list[StreamPoller] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        for spec in self.specs:
            check_source(spec, self._runtime)
        if not self.specs:
            return
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="twin-streams", daemon=True)
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(self._start_all(), loop)
        started.result(timeout=START_TIMEOUT_SECONDS)

    async def _start_all(self) -> None:
        config = Config(
            connect_timeout=2,
            read_timeout=10,
            retries={"max_attempts": 2, "mode": "standard"},
        )
        session = fake_session()
        streams = session.client("dynamodbstreams", endpoint_url=self._endpoint, config=config)
        dynamodb = session.client("dynamodb", endpoint_url=self._endpoint, config=config)
        for spec in self.specs:
            poller = StreamPoller(
                spec, self._runtime, streams, dynamodb, self._destinations[spec.logical_id]
            )
            self._pollers.append(poller)
            await poller.start()

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop every poller (batches in flight get `grace` seconds), then the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = self._thread = None
        try:
            stopping = asyncio.run_coroutine_threadsafe(self._stop_all(grace), loop)
            stopping.result(timeout=grace + 10)
        except Exception:
            log.exception("the stream pollers did not stop cleanly")
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            if not thread.is_alive():
                loop.close()

    async def _stop_all(self, grace: float) -> None:
        await asyncio.gather(*(p.stop(grace) for p in self._pollers), return_exceptions=True)

    def failures(self, logical_id: str) -> list[dict[str, Any]]:
        """The failure destination's records of a source, oldest first."""
        try:
            destination = self._destinations[logical_id]
        except KeyError:
            raise KeyError(f"no stream source {logical_id!r} in this twin") from None
        return destination.records()
