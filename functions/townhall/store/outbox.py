"""The session's outbox: event items in the session's partition, written in the same
transaction as the change each reports (`SessionStore.commit`, operation `PublishEvent`).

    sk   "E#{seq:012d}#{n:02d}"   commit order within the session
    ttl  a day after the event: nothing reads it once delivered

The Meetings table's stream carries each new event item to the fan-out consumer; the event
source mapping's filter (`townhall.functions.OUTBOX_DELIVERY`) lets through only INSERTs of
items under EVENT_SK_PREFIX. See docs/outbox.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from townhall.model.event import MalformedEvent, OutboxEvent
from townhall.model.session import SessionKey
from townhall.store import dynamo
from townhall.store.keys import session_pk

EVENT_SK_PREFIX = "E#"
EVENT_TTL_SECONDS = 24 * 3600


def event_sk(seq: int, n: int) -> str:
    return f"{EVENT_SK_PREFIX}{seq:012d}#{n:02d}"


def event_item(key: SessionKey, event: OutboxEvent) -> dict[str, Any]:
    return {
        "pk": session_pk(key),
        "sk": event_sk(event.seq, event.n),
        **event.to_record(),
        "ttl": event.at // 1000 + EVENT_TTL_SECONDS,
    }


def publish(table: str, key: SessionKey, event: OutboxEvent) -> list[dynamo.TransactItem]:
    """The transaction item that keeps `event` in the outbox. A (seq, n) is written once."""
    return [
        dynamo.TransactItem(
            {
                "Put": {
                    "TableName": table,
                    "Item": dynamo.to_ddb(event_item(key, event)),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        )
    ]


def event_from_image(image: Mapping[str, Any]) -> OutboxEvent:
    """An event from a stream record's NewImage (DynamoDB JSON); MalformedEvent otherwise."""
    try:
        item = dynamo.from_ddb(image)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise MalformedEvent(f"not DynamoDB JSON: {type(exc).__name__}") from exc
    if not str(item.get("sk", "")).startswith(EVENT_SK_PREFIX):
        raise MalformedEvent("not an event item")
    return OutboxEvent.from_record(item)
