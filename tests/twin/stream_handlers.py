"""Small handlers for the twin's stream poller and Invoke API tests, run in the twin's process
(threads), so a test reads what they saw from `SEEN`.

- `consumer` stands in for OUTBOX_FANOUT: it records each batch and acts on the `mode`
  attribute of each record's NewImage: "poison" raises, "fail-once" answers a partial batch
  failure naming that record the first time it sees it, "slow" sleeps 50 ms;
- `echo`, `fail`, `sleep` for the Invoke API;
- `http_calls_slice` stands in for the HTTP API function: it invokes the function named by
  OUTBOX_SLICE_FUNCTION through the Invoke API (as the outbox consumer does) and answers what
  it got, so a test can fill the shared Lambda threads with callers.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

MODULE = "tests.twin.stream_handlers"


@dataclass
class Batch:
    records: list[dict[str, Any]]
    started: float
    ended: float = 0.0

    @property
    def sort_keys(self) -> list[str]:
        return [r["dynamodb"]["Keys"]["sk"]["S"] for r in self.records]

    @property
    def sequence_numbers(self) -> list[int]:
        return [int(r["dynamodb"]["SequenceNumber"]) for r in self.records]


@dataclass
class Seen:
    """The batches `consumer` got, in the order its invocations started."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    batches: list[Batch] = field(default_factory=list)
    failed_once: set[str] = field(default_factory=set)

    def clear(self) -> None:
        with self.lock:
            self.batches.clear()
            self.failed_once.clear()

    def snapshot(self) -> list[Batch]:
        with self.lock:
            return list(self.batches)

    def delivered(self) -> list[str]:
        """Sort keys of every record delivered, in delivery order (repeats included)."""
        return [sk for batch in self.snapshot() for sk in batch.sort_keys]


SEEN = Seen()


def consumer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    batch = Batch(records=event["Records"], started=time.monotonic())
    with SEEN.lock:
        SEEN.batches.append(batch)
    try:
        for record in event["Records"]:
            image = record["dynamodb"].get("NewImage", {})
            mode = image.get("mode", {}).get("S")
            sequence = record["dynamodb"]["SequenceNumber"]
            if mode == "poison":
                raise RuntimeError(f"poisoned record {sequence}")
            if mode == "slow":
                time.sleep(0.05)
            if mode == "fail-once":
                with SEEN.lock:
                    first_time = sequence not in SEEN.failed_once
                    SEEN.failed_once.add(sequence)
                if first_time:
                    return {"batchItemFailures": [{"itemIdentifier": sequence}]}
        return {"batchItemFailures": []}
    finally:
        batch.ended = time.monotonic()


def echo(event: Any, context: Any) -> dict[str, Any]:
    return {"echo": event, "function": context.function_name}


def fail(event: Any, context: Any) -> Any:
    raise ValueError("bad input")


class Sleeping:
    """How many `sleep` invocations are running now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def add(self, change: int) -> None:
        with self._lock:
            self.count += change


SLEEPING = Sleeping()


def sleep(event: dict[str, Any], context: Any) -> str:
    SLEEPING.add(1)
    try:
        time.sleep(float(event.get("seconds", 0.3)))
    finally:
        SLEEPING.add(-1)
    return "slept"


def http_calls_slice(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An HTTP API handler that waits on a synchronous invocation of another function."""
    client = boto3.client(
        "lambda",  # AWS_ENDPOINT_URL_LAMBDA: the twin's Invoke API
        config=Config(read_timeout=20, retries={"max_attempts": 3, "mode": "standard"}),
    )
    answer = client.invoke(
        FunctionName=os.environ["OUTBOX_SLICE_FUNCTION"],
        Payload=json.dumps({"seconds": 0.3}).encode(),
    )
    body = answer["Payload"].read().decode()
    return {
        "statusCode": 200,
        "body": json.dumps({"answer": json.loads(body), "error": answer.get("FunctionError")}),
    }
