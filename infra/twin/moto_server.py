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
restoring a whole copy it does not undo other requests that landed meanwhile.

Above all, it isolates concurrent requests as DynamoDB does (`_install_isolation`): moto alone
lets two transactions conditional on the same item both commit.

Run by path (`python infra/twin/moto_server.py -H 127.0.0.1 -p PORT`): it imports only moto.
"""

from __future__ import annotations

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


def is_wire_ready(value: Any) -> bool:
    """True when `value` is JSON's own types only, with no None anywhere."""
    if isinstance(value, str | bool | int | float):
        return True
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_wire_ready(v) for k, v in value.items())
    if isinstance(value, list):
        return all(is_wire_ready(v) for v in value)
    return False


def install(*, isolate: bool = True) -> None:
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
    install(isolate=os.environ.get(ISOLATION_VARIABLE, "on") != "off")
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
        except Exception:
            return stock(self, transact_items)  # malformed: moto reports it as it does
        if any(backup is None for backup in backups):
            return stock(self, transact_items)
        inside.active = True
        try:
            return stock(self, transact_items)
        except Exception:
            for backup in reversed(backups):
                assert backup is not None
                table_name, key, before = backup
                if before is None:
                    if self.get_item(table_name, key) is not None:
                        self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, before)
            raise
        finally:
            inside.active = False

    models.copy = _NoTableCopies()  # type: ignore[assignment]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _item_backup(backend: Any, item: dict[str, Any]) -> tuple[str, dict[str, Any], Any] | None:
    """(table, key, the item's attributes or None if absent); None when the table has a
    stream (a restore by put/delete would add stream records: moto's way then)."""
    _, op = next(iter(item.items()))
    table_name = op["TableName"]
    table = backend.get_table(table_name)
    if getattr(table, "stream_specification", None) and table.stream_specification.get(
        "StreamEnabled"
    ):
        return None
    if "Key" in op:
        key = op["Key"]
    else:
        attrs = op["Item"]
        key = {table.hash_key_attr: attrs[table.hash_key_attr]}
        if table.range_key_attr is not None:
            key[table.range_key_attr] = attrs[table.range_key_attr]
    current = backend.get_item(table_name, key)
    return table_name, key, current.to_json()["Attributes"] if current is not None else None


if __name__ == "__main__":
    main(sys.argv[1:])
