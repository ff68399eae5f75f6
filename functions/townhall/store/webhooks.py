"""Webhook subscriptions and their delivery logs in the Organisations table.

Items (`pk`, `sk`):
- `ORG#{org_id}`, `WEBHOOK#{subscription_id}`: a subscription (URL, event types, signing
  secrets, state), in its organisation's partition: listing an organisation's subscriptions
  (the consumer does for every event) is one query of one partition, bounded by
  MAX_SUBSCRIPTIONS.
- `WEBHOOK#{subscription_id}`, `D#{delivery_id}`: one delivery of an event to it, with its
  body, status and attempts; delivery ids start with the event's time, so the log reads
  newest first. A partition per subscription keeps a busy organisation's deliveries from
  crowding one partition. Expires DELIVERY_TTL_DAYS after the event.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Protocol

from townhall.errors import InvalidInput
from townhall.model.webhook import Delivery, DeliveryStatus, SigningSecret, Subscription
from townhall.store import cursors, dynamo
from townhall.store.cursors import Page

MAX_SUBSCRIPTIONS = 20
DELIVERY_TTL_DAYS = 30
SUBSCRIPTION_PREFIX = "WEBHOOK#"
DELIVERY_PREFIX = "D#"
# Attempts kept in a delivery's own log (its counters keep counting past that).
MAX_ATTEMPT_LOG = 20

SUBSCRIPTION_ID = re.compile(r"wh_[0-9a-z]{16}")
DELIVERY_ID = re.compile(r"msg_[0-9]{13}[0-9a-f]{19}")


def subscription_key(org_id: str, subscription_id: str) -> dict[str, str]:
    return {"pk": f"ORG#{org_id}", "sk": f"{SUBSCRIPTION_PREFIX}{subscription_id}"}


def delivery_key(subscription_id: str, delivery_id: str) -> dict[str, str]:
    return {"pk": f"WEBHOOK#{subscription_id}", "sk": f"{DELIVERY_PREFIX}{delivery_id}"}


def _subscription_item(s: Subscription) -> dict[str, Any]:
    return {
        **subscription_key(s.org_id, s.subscription_id),
        "subscription_id": s.subscription_id,
        "org_id": s.org_id,
        "url": s.url,
        "event_types": list(s.event_types),
        "secrets": [secret.__dict__ for secret in s.secrets],
        "created_at": s.created_at,
        "created_by": s.created_by,
        "description": s.description,
        "disabled_at": s.disabled_at,
        "disabled_reason": s.disabled_reason,
        "last_success_at": s.last_success_at,
        "version": s.version,
    }


def _subscription(item: Mapping[str, Any]) -> Subscription:
    return Subscription(
        subscription_id=item["subscription_id"],
        org_id=item["org_id"],
        url=item["url"],
        event_types=tuple(item.get("event_types", ())),
        secrets=tuple(
            SigningSecret(s["secret"], int(s["created_at"]), int(s.get("expires_at", 0)))
            for s in item.get("secrets", ())
        ),
        created_at=int(item["created_at"]),
        created_by=item["created_by"],
        description=item.get("description", ""),
        disabled_at=int(item.get("disabled_at", 0)),
        disabled_reason=item.get("disabled_reason", ""),
        last_success_at=int(item.get("last_success_at", 0)),
        version=int(item.get("version", 1)),
    )


def _delivery_item(d: Delivery) -> dict[str, Any]:
    return {
        **delivery_key(d.subscription_id, d.delivery_id),
        **{k: v for k, v in d.__dict__.items() if k != "attempt_log"},
        "attempt_log": [],
        "ttl": d.created_at // 1000 + DELIVERY_TTL_DAYS * 86400,
    }


def _delivery(item: Mapping[str, Any]) -> Delivery:
    return Delivery(
        delivery_id=item["delivery_id"],
        subscription_id=item["subscription_id"],
        org_id=item["org_id"],
        event_type=item["event_type"],
        body=item["body"],
        created_at=int(item["created_at"]),
        status=item.get("status", "pending"),
        attempts=int(item.get("attempts", 0)),
        last_attempt_at=int(item.get("last_attempt_at", 0)),
        last_status_code=int(item.get("last_status_code", 0)),
        last_error=item.get("last_error", ""),
        next_attempt_at=int(item.get("next_attempt_at", 0)),
        replays=int(item.get("replays", 0)),
        attempt_log=tuple(
            {k: (int(v) if not isinstance(v, str) else v) for k, v in a.items()}
            for a in item.get("attempt_log", ())
        ),
    )


class WebhookRecords(Protocol):
    def create_subscription(self, subscription: Subscription) -> None: ...

    def subscription(self, org_id: str, subscription_id: str) -> Subscription | None: ...

    def subscriptions(self, org_id: str) -> list[Subscription]: ...

    def save_subscription(self, subscription: Subscription, expected_version: int) -> bool: ...

    def delete_subscription(self, org_id: str, subscription_id: str) -> bool: ...

    def disable(self, org_id: str, subscription_id: str, at: int, reason: str) -> bool: ...

    def record_success(self, org_id: str, subscription_id: str, at: int) -> None: ...

    def add_delivery(self, delivery: Delivery) -> bool: ...

    def delivery(self, subscription_id: str, delivery_id: str) -> Delivery | None: ...

    def deliveries(
        self, subscription_id: str, status: DeliveryStatus | None, limit: int, cursor: str | None
    ) -> Page[Delivery]: ...

    def claim_attempt(self, subscription_id: str, delivery_id: str, attempt: int) -> bool: ...

    def record_attempt(
        self,
        delivery: Delivery,
        attempt: int,
        entry: dict[str, int | str],
        status: DeliveryStatus,
        next_attempt_at: int,
    ) -> None: ...

    def reopen(self, subscription_id: str, delivery_id: str) -> bool: ...


@dynamo.store_boundary
class WebhookStore:
    def __init__(self, table: str) -> None:
        self._table = table

    # -- subscriptions ------------------------------------------------------------------------

    def create_subscription(self, subscription: Subscription) -> None:
        dynamo.client().put_item(
            TableName=self._table,
            Item=dynamo.to_ddb(_subscription_item(subscription)),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def subscription(self, org_id: str, subscription_id: str) -> Subscription | None:
        item = dynamo.get(self._table, subscription_key(org_id, subscription_id))
        return _subscription(item) if item else None

    def subscriptions(self, org_id: str) -> list[Subscription]:
        items = dynamo.query_all(
            self._table,
            "pk = :pk AND begins_with(sk, :prefix)",
            {":pk": f"ORG#{org_id}", ":prefix": SUBSCRIPTION_PREFIX},
            consistent=True,
            limit_pages=2,
        )
        return [_subscription(i) for i in items][: MAX_SUBSCRIPTIONS * 2]

    def save_subscription(self, subscription: Subscription, expected_version: int) -> bool:
        """Write the subscription if it is still at `expected_version` (False: it changed or
        went meanwhile; nothing written)."""
        return dynamo.put_if_condition_holds(
            TableName=self._table,
            Item=dynamo.to_ddb(_subscription_item(subscription)),
            ConditionExpression="version = :v",
            ExpressionAttributeValues={":v": dynamo.value(expected_version)},
        )

    def delete_subscription(self, org_id: str, subscription_id: str) -> bool:
        return dynamo.delete_if_condition_holds(
            TableName=self._table,
            Key=dynamo.to_ddb(subscription_key(org_id, subscription_id)),
            ConditionExpression="attribute_exists(pk)",
        )

    def disable(self, org_id: str, subscription_id: str, at: int, reason: str) -> bool:
        """Disable an enabled subscription; False if it is gone or disabled already."""
        return dynamo.update_if_condition_holds(
            TableName=self._table,
            Key=dynamo.to_ddb(subscription_key(org_id, subscription_id)),
            UpdateExpression="SET disabled_at = :at, disabled_reason = :why ADD version :one",
            ConditionExpression="attribute_exists(pk) AND disabled_at = :zero",
            ExpressionAttributeValues={
                ":at": dynamo.value(at),
                ":why": dynamo.value(reason),
                ":zero": dynamo.value(0),
                ":one": dynamo.value(1),
            },
        )

    def record_success(self, org_id: str, subscription_id: str, at: int) -> None:
        """At most one write a minute per subscription, however many deliveries succeed."""
        dynamo.update_if_condition_holds(
            TableName=self._table,
            Key=dynamo.to_ddb(subscription_key(org_id, subscription_id)),
            UpdateExpression="SET last_success_at = :at",
            ConditionExpression="attribute_exists(pk) AND last_success_at < :before",
            ExpressionAttributeValues={
                ":at": dynamo.value(at),
                ":before": dynamo.value(at - 60),
            },
        )

    # -- deliveries ---------------------------------------------------------------------------

    def add_delivery(self, delivery: Delivery) -> bool:
        """Keep a new delivery; False if one with its id exists (the same event again)."""
        return dynamo.put_if_condition_holds(
            TableName=self._table,
            Item=dynamo.to_ddb(_delivery_item(delivery)),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def delivery(self, subscription_id: str, delivery_id: str) -> Delivery | None:
        item = dynamo.get(self._table, delivery_key(subscription_id, delivery_id))
        return _delivery(item) if item else None

    def deliveries(
        self, subscription_id: str, status: DeliveryStatus | None, limit: int, cursor: str | None
    ) -> Page[Delivery]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": dynamo.value(f"WEBHOOK#{subscription_id}"),
                ":prefix": dynamo.value(DELIVERY_PREFIX),
            },
            "ScanIndexForward": False,
            "Limit": cursors.page_size(limit),
            "ConsistentRead": True,
        }
        if status is not None:
            request["FilterExpression"] = "#status = :status"
            request["ExpressionAttributeNames"] = {"#status": "status"}
            request["ExpressionAttributeValues"][":status"] = dynamo.value(status)
        if cursor is not None:
            fields = cursors.decode(cursor, {"d": DELIVERY_ID})
            request["ExclusiveStartKey"] = dynamo.to_ddb(
                delivery_key(subscription_id, str(fields["d"]))
            )
        page = dynamo.client().query(**request)
        items = [_delivery(dynamo.from_ddb(raw)) for raw in page.get("Items", [])]
        last = page.get("LastEvaluatedKey")
        next_cursor = None
        if last:
            sk = str(dynamo.from_ddb(last)["sk"])
            next_cursor = cursors.encode({"d": sk.removeprefix(DELIVERY_PREFIX)})
        return Page(items, next_cursor)

    def claim_attempt(self, subscription_id: str, delivery_id: str, attempt: int) -> bool:
        """Take attempt number `attempt` (1-based) of a pending delivery; False if another
        copy of the message took it, or the delivery is no longer pending. What makes a
        duplicated SQS message (at-least-once) post once."""
        return dynamo.update_if_condition_holds(
            TableName=self._table,
            Key=dynamo.to_ddb(delivery_key(subscription_id, delivery_id)),
            UpdateExpression="SET attempts = :attempt",
            ConditionExpression="#status = :pending AND attempts = :before",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":attempt": dynamo.value(attempt),
                ":before": dynamo.value(attempt - 1),
                ":pending": dynamo.value("pending"),
            },
        )

    def record_attempt(
        self,
        delivery: Delivery,
        attempt: int,
        entry: dict[str, int | str],
        status: DeliveryStatus,
        next_attempt_at: int,
    ) -> None:
        log = [*delivery.attempt_log, entry][-MAX_ATTEMPT_LOG:]
        dynamo.client().update_item(
            TableName=self._table,
            Key=dynamo.to_ddb(delivery_key(delivery.subscription_id, delivery.delivery_id)),
            UpdateExpression=(
                "SET #status = :status, last_attempt_at = :at, last_status_code = :code, "
                "last_error = :error, next_attempt_at = :next, attempt_log = :log"
            ),
            ConditionExpression="attempts = :attempt",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":status": dynamo.value(status),
                ":at": dynamo.value(entry["at"]),
                ":code": dynamo.value(entry.get("status_code", 0)),
                ":error": dynamo.value(entry.get("error", "")),
                ":next": dynamo.value(next_attempt_at),
                ":log": dynamo.value(log),
                ":attempt": dynamo.value(attempt),
            },
        )

    def reopen(self, subscription_id: str, delivery_id: str) -> bool:
        """A failed delivery pending again from attempt 1 (a replay); False unless failed."""
        return dynamo.update_if_condition_holds(
            TableName=self._table,
            Key=dynamo.to_ddb(delivery_key(subscription_id, delivery_id)),
            UpdateExpression="SET #status = :pending, attempts = :zero ADD replays :one",
            ConditionExpression="#status = :failed",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":pending": dynamo.value("pending"),
                ":failed": dynamo.value("failed"),
                ":zero": dynamo.value(0),
                ":one": dynamo.value(1),
            },
        )


def body_json(delivery: Delivery) -> Any:
    return json.loads(delivery.body)


def check_subscription_id(value: str) -> None:
    if not SUBSCRIPTION_ID.fullmatch(value):
        raise InvalidInput("subscription id is not valid")
