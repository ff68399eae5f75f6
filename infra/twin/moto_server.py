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

Run by path (`python infra/twin/moto_server.py -H 127.0.0.1 -p PORT`): it imports only moto.
"""

from __future__ import annotations

import json
import sys
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


def is_wire_ready(value: Any) -> bool:
    """True when `value` is JSON's own types only, with no None anywhere."""
    if isinstance(value, str | bool | int | float):
        return True
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_wire_ready(v) for k, v in value.items())
    if isinstance(value, list):
        return all(is_wire_ready(v) for v in value)
    return False


def install() -> None:
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


def main(argv: list[str]) -> None:
    from moto.server import main as moto_main

    install()
    moto_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
