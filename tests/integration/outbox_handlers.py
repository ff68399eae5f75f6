"""Outbox consumers for tests: the real one, made to fail in the ways Lambda then retries."""

from __future__ import annotations

import threading
from typing import Any

# The text (in a chat or a reaction's sender name) that marks a batch to be failed once.
RETRY_MARK = "retry-me"

_failed_once: set[str] = set()
_lock = threading.Lock()
deliveries: list[str] = []  # the sequence numbers of every record handed to the consumer


def fails_marked_batches_once(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Deliver the batch as the real consumer does; then, the first time a record carrying
    RETRY_MARK is seen, answer that it failed, as if the invocation had died after posting.
    Lambda (and the twin) deliver the batch again from that record: every client gets those
    events twice."""
    # Imported here: the handler module reads the twin's environment when first imported.
    from handlers.outbox_fanout import handler as deliver

    answer = deliver(event, context)
    records = event.get("Records", [])
    with _lock:
        deliveries.extend(r["dynamodb"]["SequenceNumber"] for r in records)
        for record in records:
            sequence = record["dynamodb"]["SequenceNumber"]
            if (
                RETRY_MARK in str(record["dynamodb"].get("NewImage"))
                and sequence not in _failed_once
            ):
                _failed_once.add(sequence)
                return {"batchItemFailures": [{"itemIdentifier": sequence}]}
    return answer
