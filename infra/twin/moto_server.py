"""moto's server (`python -m moto.server`), with a faster writer for DynamoDB's item answers.

moto 5.2 writes every answer through a generic serializer that walks the operation's output
shape member by member; for a query of 300 items that walk is more than half of moto's time
(104 ms of which 58 in the serializer, measured on this machine), and the twin's fan-outs read
the whole roster on every action. DynamoDB's JSON protocol needs no walk for those answers:
moto's result is already the wire document. So for the operations that carry items, a result
made only of JSON's own types (objects with string keys, lists, strings, numbers, booleans;
no None, bytes or dates, which the serializer converts or drops) is written with `json.dumps`;
anything else goes through moto's serializer as before. tests/twin/test_twin_moto_server.py
checks that both writers give the same answer.

It also keeps a promise of DynamoDB's that moto does not: TransactWriteItems with a
`ClientRequestToken` (botocore fills one in for every call, and a retry resends the same) is
idempotent for 10 minutes. A retry of a transaction that did apply (botocore's read timed out
while moto was slow) answers as the first call did instead of applying it again, where moto
alone fails it on its own conditions; the same token with other items is
IdempotentParameterMismatchException, as in AWS.

And one cost of moto's that grows with the twin's whole history: before each
TransactWriteItems moto deep-copies every table the transaction names, to restore it if the
transaction fails. The meetings table holds every meeting, participant and chat message, so
each `join` and `chat` copied all of them. Here only the items the transaction writes are
kept (as they were, or as absent) and put back on failure: the same outcome, and unlike
restoring a whole copy it does not undo other requests that landed meanwhile. A table with a
stream (the Meetings table: the outbox) keeps this fast path: the stream's length is noted
before the transaction, and a rollback also drops every stream record appended since (the
transaction's own writes and the rollback's put/delete), so a cancelled transaction leaves no
stream record, as in DynamoDB.

The streams are bounded as DynamoDB's are (`_install_stream_bounds`): records older than 24
hours are trimmed, and so are the oldest beyond a count (200,000) that keeps moto's memory in
check; sequence numbers stay what they were. The shard iterators moto registers on every
GetRecords are dropped once used (a poller asks every few milliseconds).

Above all, it isolates concurrent requests as DynamoDB does (`_install_isolation`): moto alone
lets two transactions conditional on the same item both commit.

Run by path (`python infra/twin/moto_server.py -H 127.0.0.1 -p PORT`): it imports only moto.
"""

from __future__ import annotations

import bisect
import datetime
import itertools
import json
import os
import sys
import threading
import time
from typing import Any

FAST_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)
CONTENT_TYPE = "application/x-amz-json-1.0"
IDEMPOTENCY_SECONDS = 600.0
# How often survivors are moved out of the collector's reach (see _keep_collections_short).
FREEZE_INTERVAL_SECONDS = 1.0
# "off" serves requests unisolated, as moto alone does: only for measuring what isolation costs
# (bench/); the twin never sets it.
ISOLATION_VARIABLE = "TWIN_DYNAMODB_ISOLATION"
SWITCH_INTERVAL_VARIABLE = "TWIN_MOTO_SWITCH_INTERVAL"
# DynamoDB Streams keeps a record 24 hours; the twin trims older ones. The count bounds moto's
# memory besides (a record holds the item's image): at 200,000 the oldest tenth is trimmed.
# Both can be lowered through the environment, for tests of the trimming.
STREAM_RETENTION_VARIABLE = "TWIN_STREAM_RETENTION_SECONDS"
STREAM_MAX_RECORDS_VARIABLE = "TWIN_STREAM_MAX_RECORDS"
DEFAULT_STREAM_RETENTION_SECONDS = 24 * 3600
DEFAULT_STREAM_MAX_RECORDS = 200_000
# How often a shard looks for records past their retention (on a write; the check is cheap,
# the trim a list slice).
STREAM_AGE_CHECK_SECONDS = 1.0
# Shard iterators obtained but never used are kept up to this many (the oldest go first).
MAX_SHARD_ITERATORS = 1000


def is_wire_ready(value: Any) -> bool:
    """True when `value` is JSON's own types only, with no None anywhere."""
    if isinstance(value, str | bool | int | float):
        return True
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_wire_ready(v) for k, v in value.items())
    if isinstance(value, list):
        return all(is_wire_ready(v) for v in value)
    return False


def install(
    *,
    isolate: bool = True,
    stream_retention_seconds: float = DEFAULT_STREAM_RETENTION_SECONDS,
    stream_max_records: int = DEFAULT_STREAM_MAX_RECORDS,
) -> None:
    from moto.dynamodb.responses import DynamoResult

    stock = DynamoResult.execute_result
    if getattr(stock, "twin_fast_path", False):
        return

    def execute_result(self: Any, context: Any) -> Any:
        if context.operation_model.name in FAST_OPERATIONS and is_wire_ready(self.result):
            return 200, {"Content-Type": CONTENT_TYPE}, json.dumps(self.result)
        return stock(self, context)

    execute_result.twin_fast_path = True  # type: ignore[attr-defined]
    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]
    _install_transaction_tokens()
    _install_transaction_item_backups()
    _install_stream_bounds(stream_retention_seconds, stream_max_records)
    if isolate:
        _install_isolation()


def _install_isolation() -> None:
    """Serve DynamoDB (and its stream) one request at a time.

    moto's server runs each request on a thread of its own and its backend takes no lock: a
    transaction checks its conditions and then writes, an `ADD` reads and then writes, and
    another request's thread can run in between. DynamoDB's single-item writes are atomic and
    its transactions serializable, so a twin that interleaves them lets two writers that read
    the same `rev` both commit. One lock around each whole request (its backend work and its
    answer, which reads live items) restores that isolation. It costs little: moto's work is
    pure Python under the interpreter lock, so its threads never ran it in parallel anyway.
    """
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    lock = threading.Lock()
    for handler in (DynamoHandler, DynamoDBStreamsHandler):
        stock = handler.call_action

        def call_action(self: Any, stock: Any = stock) -> Any:
            with lock:
                return stock(self)

        handler.call_action = call_action  # type: ignore[method-assign]


def _install_transaction_tokens() -> None:
    from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException
    from moto.dynamodb.responses import DynamoHandler

    stock = DynamoHandler.transact_write_items
    lock = threading.Lock()
    # token -> (when, the request's items, the answer): successful transactions only.
    done: dict[str, tuple[float, str, Any]] = {}

    def transact_write_items(self: Any) -> Any:
        token = self.body.get("ClientRequestToken")
        if not token:
            return stock(self)
        items = json.dumps(self.body.get("TransactItems"), sort_keys=True, default=str)
        now = time.monotonic()
        with lock:
            for old in [t for t, (when, _, _) in done.items() if now - when > IDEMPOTENCY_SECONDS]:
                del done[old]
            seen = done.get(token)
        if seen is not None:
            if seen[1] != items:
                raise DynamodbException(
                    ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException",
                    "Request parameters do not match the original request for this "
                    "ClientRequestToken",
                )
            return seen[2]
        answer = stock(self)
        with lock:
            done[token] = (now, items, answer)
        return answer

    DynamoHandler.transact_write_items = transact_write_items  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    from moto.server import main as moto_main

    # Tests that race requests against this server shorten the interpreter's switch interval,
    # so a thread is preempted inside moto's check-then-write windows often enough for a
    # missing lock to show within a few hundred requests (at the default 5 ms it rarely does).
    switch_interval = os.environ.get(SWITCH_INTERVAL_VARIABLE)
    if switch_interval:
        sys.setswitchinterval(float(switch_interval))
    install(
        isolate=os.environ.get(ISOLATION_VARIABLE, "on") != "off",
        stream_retention_seconds=float(
            os.environ.get(STREAM_RETENTION_VARIABLE, DEFAULT_STREAM_RETENTION_SECONDS)
        ),
        stream_max_records=int(
            os.environ.get(STREAM_MAX_RECORDS_VARIABLE, DEFAULT_STREAM_MAX_RECORDS)
        ),
    )
    _keep_collections_short()
    moto_main(argv)


def _keep_collections_short() -> None:
    """Keep the collector from pausing the emulator the way DynamoDB never pauses.

    moto holds every item, stream record and request record as Python objects, and a full
    collection walks all of them with the lock held: with a few thousand items that is a
    60-80 ms stall of one request in a few seconds, which showed up as the chat fan-out's p99
    in the benchmarks. Freezing what has survived so far moves it out of the collector's
    reach; reference counting still frees items when they are deleted, and only a reference
    cycle among frozen objects would stay (moto's items hold none).
    """
    import gc

    def freeze_survivors() -> None:
        while True:
            time.sleep(FREEZE_INTERVAL_SECONDS)
            gc.freeze()

    threading.Thread(target=freeze_survivors, name="gc-freeze", daemon=True).start()


def _install_transaction_item_backups() -> None:
    import copy

    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    stock = DynamoDBBackend.transact_write_items
    inside = threading.local()

    class _NoTableCopies:
        """`copy` for moto's models module: while one of our transactions runs in this
        thread, a Table is "copied" as itself (so moto's own restore is a no-op)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(copy, name)

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            if isinstance(value, Table) and getattr(inside, "active", False):
                return value
            return copy.deepcopy(value, memo)

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        try:
            backups = [_item_backup(self, item) for item in transact_items]
            marks = _stream_marks(self, transact_items)
        except Exception:
            return stock(self, transact_items)  # malformed: moto reports it as it does
        inside.active = True
        try:
            return stock(self, transact_items)
        except Exception:
            try:
                for table_name, key, before in reversed(backups):
                    if before is None:
                        if self.get_item(table_name, key) is not None:
                            self.delete_item(table_name, key)
                    else:
                        self.put_item(table_name, before)
            finally:
                # After the restore: its put/delete appended records of their own.
                for shard, end in marks:
                    drop_stream_records_from(shard, end)
            raise
        finally:
            inside.active = False

    models.copy = _NoTableCopies()  # type: ignore[assignment]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _item_backup(backend: Any, item: dict[str, Any]) -> tuple[str, dict[str, Any], Any]:
    """(table, key, the item's attributes or None if absent)."""
    _, op = next(iter(item.items()))
    table_name = op["TableName"]
    table = backend.get_table(table_name)
    if "Key" in op:
        key = op["Key"]
    else:
        attrs = op["Item"]
        key = {table.hash_key_attr: attrs[table.hash_key_attr]}
        if table.range_key_attr is not None:
            key[table.range_key_attr] = attrs[table.range_key_attr]
    current = backend.get_item(table_name, key)
    return table_name, key, current.to_json()["Attributes"] if current is not None else None


def _stream_marks(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, int]]:
    """(stream shard, the sequence number its next record will take) for each table of the
    transaction that has a stream. Requests are served one at a time (`_install_isolation`),
    so every record past the mark until the transaction ends is the transaction's own."""
    marks: list[tuple[Any, int]] = []
    seen: set[str] = set()
    for item in transact_items:
        _, op = next(iter(item.items()))
        table_name = op["TableName"]
        if table_name in seen:
            continue
        seen.add(table_name)
        shard = backend.get_table(table_name).stream_shard
        if shard is not None:
            marks.append((shard, shard.starting_sequence_number + len(shard.items)))
    return marks


def drop_stream_records_from(shard: Any, sequence_number: int) -> None:
    """Remove the shard's records numbered `sequence_number` and later. Counted from the
    shard's start as it is now, so a trim of the oldest records meanwhile changes nothing."""
    keep = max(0, sequence_number - shard.starting_sequence_number)
    del shard.items[keep:]


def trim_stream(shard: Any, *, retention_seconds: float, max_records: int) -> int:
    """Drop the shard's records older than the retention, and the oldest past `max_records`
    (down to nine tenths of it, so the list is cut once per many writes rather than on each);
    returns how many went.

    moto numbers a new record `starting_sequence_number + len(items)` and finds one by the
    same arithmetic, so the start moves up by as many as were dropped: every record keeps its
    number, and an iterator pointing before the new start is refused (TrimmedDataAccess).
    """
    from moto.core.utils import utcnow

    items = shard.items
    drop = 0
    if len(items) > max_records:
        drop = len(items) - max_records + max_records // 10
    now = time.monotonic()
    if now - getattr(shard, "twin_age_checked", 0.0) >= STREAM_AGE_CHECK_SECONDS:
        shard.twin_age_checked = now
        cutoff = utcnow() - datetime.timedelta(seconds=retention_seconds)
        # Records are appended as they are made, so their times only grow.
        expired = bisect.bisect_left(
            items, cutoff, key=lambda r: r.record["dynamodb"]["ApproximateCreationDateTime"]
        )
        drop = max(drop, expired)
    drop = min(drop, len(items))
    if drop:
        del items[:drop]
        shard.starting_sequence_number += drop
    return drop


def _install_stream_bounds(retention_seconds: float, max_records: int) -> None:
    """Keep every stream within DynamoDB's 24 hours (and a count), answer a read of trimmed
    records as DynamoDB does, and forget shard iterators once used."""
    from moto.core.exceptions import ServiceException
    from moto.dynamodb.models.table import StreamShard
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    if max_records < 1 or retention_seconds <= 0:
        raise ValueError("a stream must keep at least one record for some time")
    stock_add = StreamShard.add
    stock_get = StreamShard.get
    stock_iterator = DynamoDBStreamsBackend.get_shard_iterator

    def add(self: Any, old: Any, new: Any) -> None:
        stock_add(self, old, new)
        trim_stream(self, retention_seconds=retention_seconds, max_records=max_records)

    def trimmed(sequence_number: int) -> ServiceException:
        return ServiceException(
            "TrimmedDataAccessException",
            f"the stream no longer holds sequence number {sequence_number} (trimmed)",
        )

    def get(self: Any, start: int, quantity: int) -> list[dict[str, Any]]:
        if start < self.starting_sequence_number:
            raise trimmed(start)
        return stock_get(self, start, quantity)

    def get_shard_iterator(self: Any, *args: Any, **kwargs: Any) -> Any:
        iterator = stock_iterator(self, *args, **kwargs)
        if iterator.sequence_number < iterator.stream_shard.starting_sequence_number:
            del self.shard_iterators[iterator.arn]
            raise trimmed(iterator.sequence_number)
        _forget_old_iterators(self.shard_iterators)
        return iterator

    def get_records(self: Any, iterator_arn: str, limit: int) -> dict[str, Any]:
        # Used once: its answer names the next one. AWS would accept it again for 15 minutes;
        # no poller does that, and keeping each one would grow without bound.
        iterator = self.shard_iterators.pop(iterator_arn, None)
        if iterator is None:
            raise ServiceException(
                "ExpiredIteratorException", "the shard iterator was used already or expired"
            )
        answer: dict[str, Any] = iterator.get(limit)
        _forget_old_iterators(self.shard_iterators)
        return answer

    StreamShard.add = add  # type: ignore[method-assign]
    StreamShard.get = get  # type: ignore[method-assign]
    DynamoDBStreamsBackend.get_shard_iterator = get_shard_iterator  # type: ignore[method-assign]
    DynamoDBStreamsBackend.get_records = get_records  # type: ignore[method-assign]


def _forget_old_iterators(iterators: dict[str, Any]) -> None:
    """The dict keeps insertion order: the first ones are the oldest."""
    excess = len(iterators) - MAX_SHARD_ITERATORS
    if excess > 0:
        for arn in list(itertools.islice(iterators, excess)):
            del iterators[arn]


if __name__ == "__main__":
    main(sys.argv[1:])
