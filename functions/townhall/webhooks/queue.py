"""The delivery queue (SQS): what the consumer and the sender send, and where exhausted
deliveries go. An AWS adapter, like the @connections client.

A message is a pointer to a delivery item, not the delivery: {"v", "org_id",
"subscription_id", "delivery_id", "attempt" (the attempt to make, 1-based), "wait" (seconds
still to wait before it, beyond the SQS delay it was sent with)}.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Protocol

MESSAGE_VERSION = 1
# SendMessageBatch's own limit.
BATCH = 10


@dataclass(frozen=True)
class DeliveryMessage:
    org_id: str
    subscription_id: str
    delivery_id: str
    attempt: int = 1
    wait: float = 0.0

    def to_json(self) -> str:
        return json.dumps({"v": MESSAGE_VERSION, **asdict(self)}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> DeliveryMessage:
        """ValueError unless it is a message this code wrote."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("v") != MESSAGE_VERSION:
            raise ValueError("not a delivery message of a known version")
        fields = {k: data.get(k) for k in ("org_id", "subscription_id", "delivery_id")}
        if not all(isinstance(v, str) and 0 < len(v) <= 64 for v in fields.values()):
            raise ValueError("a delivery message names its org, subscription and delivery")
        attempt, wait = data.get("attempt"), data.get("wait")
        if not isinstance(attempt, int) or not 1 <= attempt <= 100:
            raise ValueError("attempt must be 1 to 100")
        if not isinstance(wait, int | float) or not 0 <= wait <= 7 * 86400:
            raise ValueError("wait must be 0 to a week")
        return cls(attempt=attempt, wait=float(wait), **fields)  # type: ignore[arg-type]


class DeliveryQueue(Protocol):
    def send(self, messages: list[DeliveryMessage], delay_seconds: int = 0) -> None: ...

    def dead_letter(self, body: str) -> None: ...


class SqsDeliveryQueue:
    def __init__(self, queue_url: str, dead_letter_url: str) -> None:
        import boto3

        self._sqs: Any = boto3.client("sqs")
        self._url = queue_url
        self._dead_letter_url = dead_letter_url

    def send(self, messages: list[DeliveryMessage], delay_seconds: int = 0) -> None:
        """In order, ten at a time; raises if any message was not taken (the caller retries
        its whole input, and duplicates are harmless: see WebhookStore.claim_attempt)."""
        for start in range(0, len(messages), BATCH):
            chunk = messages[start : start + BATCH]
            result = self._sqs.send_message_batch(
                QueueUrl=self._url,
                Entries=[
                    {"Id": str(i), "MessageBody": m.to_json(), "DelaySeconds": delay_seconds}
                    for i, m in enumerate(chunk)
                ],
            )
            if result.get("Failed"):
                raise RuntimeError(f"SQS refused {len(result['Failed'])} delivery messages")

    def dead_letter(self, body: str) -> None:
        self._sqs.send_message(QueueUrl=self._dead_letter_url, MessageBody=body)
