"""The thin layer between our stores and DynamoDB's low-level client.

Low-level clients are thread-safe (resources are not), and the twin calls handlers from a
thread pool, so every store uses one shared client. botocore honours `AWS_ENDPOINT_URL_DYNAMODB`,
which is how the twin points the same code at its moto server.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from townhall import clock
from townhall.errors import DomainError

Item = dict[str, Any]
T = TypeVar("T")


class StoreUnavailable(DomainError):
    """DynamoDB failed a request for a reason other than a condition (a throttle, an outage, a
    timeout): nothing was decided, and the caller may retry. The one error a store lets out
    besides the domain's own: botocore's exceptions never leave store/."""

    code = "unavailable"


@contextlib.contextmanager
def failures_as_unavailable(what: str) -> Iterator[None]:
    """botocore's errors leave the block as StoreUnavailable, never as ClientError."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise StoreUnavailable(f"{what} failed; try again") from exc


def store_boundary(cls: type[T]) -> type[T]:
    """Class decorator for a store: every public method lets botocore's errors out only as
    StoreUnavailable. Conditions the store expects (a failed condition, a cancelled
    transaction) it handles inside, before they reach here."""
    for name, member in list(vars(cls).items()):
        if name.startswith("_") or not callable(member):
            continue
        setattr(cls, name, _guarded(member, f"{cls.__name__}.{name}"))
    return cls


def _guarded(method: Callable[..., Any], what: str) -> Callable[..., Any]:
    @functools.wraps(method)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        with failures_as_unavailable(what):
            return method(*args, **kwargs)

    return guarded


_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
_clients: dict[str | None, Any] = {}
_client_lock = threading.Lock()


def client() -> Any:
    """The DynamoDB client for the current endpoint, created on first use and then shared
    (one per endpoint, so a twin restarted elsewhere in the same process is followed)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
    with _client_lock:
        if endpoint not in _clients:
            import boto3
            from botocore.config import Config

            _clients[endpoint] = boto3.client(
                "dynamodb",
                config=Config(
                    retries={"mode": "standard", "max_attempts": 4},
                    max_pool_connections=64,
                    connect_timeout=2,
                    read_timeout=5,
                ),
            )
        return _clients[endpoint]


def to_ddb(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(_plain(v)) for k, v in item.items() if v is not None}


def from_ddb(item: Mapping[str, Any]) -> Item:
    return {k: _native(_deserializer.deserialize(v)) for k, v in item.items()}


def value(v: Any) -> dict[str, Any]:
    serialized: dict[str, Any] = dict(_serializer.serialize(_plain(v)))
    return serialized


def _plain(v: Any) -> Any:
    if isinstance(v, float):
        return Decimal(str(v))
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def _native(v: Any) -> Any:
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, dict):
        return {k: _native(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_native(x) for x in v]
    if isinstance(v, set):
        return {_native(x) for x in v}
    return v


def is_live(item: Mapping[str, Any], now: float | None = None) -> bool:
    """DynamoDB deletes expired items lazily (up to days late) and moto never does: every read
    of an item with a TTL goes through this filter."""
    ttl = item.get("ttl")
    return ttl is None or int(ttl) > (clock.now() if now is None else now)


def is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def cancellation_reasons(exc: ClientError) -> list[str]:
    """The per-item codes of a cancelled transaction ('None' for items that were fine)."""
    reasons = exc.response.get("CancellationReasons") or []
    return [str(r.get("Code", "None")) for r in reasons]


def query_all(
    table: str,
    key_condition: str,
    values: Mapping[str, Any],
    *,
    names: Mapping[str, str] | None = None,
    index: str | None = None,
    consistent: bool = False,
    projection: str | None = None,
    limit_pages: int = 50,
) -> Iterator[Item]:
    """Every item a query finds, page by page (bounded, so a runaway partition cannot spin)."""
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": key_condition,
        "ExpressionAttributeValues": {k: value(v) for k, v in values.items()},
        "ConsistentRead": consistent,
    }
    if names:
        request["ExpressionAttributeNames"] = dict(names)
    if projection:
        request["ProjectionExpression"] = projection
    if index:
        request["IndexName"] = index
        request.pop("ConsistentRead")  # global secondary indexes are eventually consistent
    for _ in range(limit_pages):
        page = client().query(**request)
        for raw in page.get("Items", []):
            yield from_ddb(raw)
        last = page.get("LastEvaluatedKey")
        if not last:
            return
        request["ExclusiveStartKey"] = last


def batch_get(table: str, keys: list[dict[str, Any]], consistent: bool = True) -> list[Item]:
    """The items of up to 100 keys in one BatchGetItem, retrying unprocessed keys (bounded)."""
    if not keys:
        return []
    found: list[Item] = []
    request: dict[str, Any] = {
        table: {"Keys": [to_ddb(k) for k in keys], "ConsistentRead": consistent}
    }
    for _ in range(5):  # throttling returns unprocessed keys: bounded retry
        result = client().batch_get_item(RequestItems=request)
        found.extend(from_ddb(raw) for raw in result.get("Responses", {}).get(table, []))
        request = result.get("UnprocessedKeys") or {}
        if not request:
            return found
        time.sleep(0.01)
    raise RuntimeError("DynamoDB kept keys unprocessed; retry the request")


def delete_keys(table: str, keys: list[dict[str, Any]]) -> int:
    """Delete the items of `keys`, 25 per BatchWriteItem, retrying what comes back unprocessed
    (bounded); how many were asked."""
    for start in range(0, len(keys), 25):  # BatchWriteItem takes 25 at a time
        request: dict[str, Any] = {
            table: [{"DeleteRequest": {"Key": to_ddb(k)}} for k in keys[start : start + 25]]
        }
        for _ in range(5):  # unprocessed items come back under throttling: bounded retry
            result = client().batch_write_item(RequestItems=request)
            request = result.get("UnprocessedItems") or {}
            if not request:
                break
            time.sleep(0.05)
    return len(keys)


def update_if_condition_holds(**request: Any) -> bool:
    """UpdateItem `request`; False (nothing written) if its ConditionExpression failed. Any
    other failure is raised."""
    try:
        client().update_item(**request)
    except ClientError as exc:
        if is_condition_failure(exc):
            return False
        raise
    return True


def put_if_condition_holds(**request: Any) -> bool:
    """PutItem `request`; False (nothing written) if its ConditionExpression failed."""
    return _if_condition_holds(client().put_item, request)


def delete_if_condition_holds(**request: Any) -> bool:
    """DeleteItem `request`; False (nothing deleted) if its ConditionExpression failed."""
    return _if_condition_holds(client().delete_item, request)


def _if_condition_holds(operation: Callable[..., Any], request: dict[str, Any]) -> bool:
    try:
        operation(**request)
    except ClientError as exc:
        if is_condition_failure(exc):
            return False
        raise
    return True


def transact_if_conditions_hold(items: list[dict[str, Any]]) -> bool:
    """Write `items` in one transaction; False (nothing written) if a condition of one failed.
    Any other failure is raised."""
    try:
        client().transact_write_items(TransactItems=items)
    except ClientError as exc:
        if "ConditionalCheckFailed" in cancellation_reasons(exc):
            return False
        raise
    return True


def get(table: str, key: Mapping[str, Any]) -> Item | None:
    raw = client().get_item(TableName=table, Key=to_ddb(key), ConsistentRead=True).get("Item")
    return from_ddb(raw) if raw else None


@dataclass(frozen=True)
class TransactItem:
    """One item of a TransactWriteItems request, and the domain error that a failed condition
    on it means. Without one, a failed condition means the item changed since it was read."""

    request: dict[str, Any]
    refusal: DomainError | None = None


def put(table: str, item: Mapping[str, Any]) -> dict[str, Any]:
    """A transaction item that writes `item` whatever was there."""
    return {"Put": {"TableName": table, "Item": to_ddb(item)}}


def put_new(table: str, item: Mapping[str, Any]) -> dict[str, Any]:
    """A transaction item that creates `item` and fails if its key already exists."""
    return {
        "Put": {
            "TableName": table,
            "Item": to_ddb(item),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


def update(
    table: str,
    key: Mapping[str, Any],
    expression: str,
    values: Mapping[str, Any],
    *,
    condition: str | None = None,
    names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A transaction item that updates one item (conditionally)."""
    body: dict[str, Any] = {
        "TableName": table,
        "Key": to_ddb(key),
        "UpdateExpression": expression,
        "ExpressionAttributeValues": {k: value(v) for k, v in values.items()},
    }
    if condition:
        body["ConditionExpression"] = condition
    if names:
        body["ExpressionAttributeNames"] = dict(names)
    return {"Update": body}


def public(item: Mapping[str, Any]) -> Item:
    """An item without its table keys."""
    return {k: v for k, v in item.items() if k not in ("pk", "sk")}
