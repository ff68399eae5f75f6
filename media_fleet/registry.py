"""A media node's own entry in the registry: register, heartbeat, drain, deregister.

The node process owns exactly one item in the MediaNodes table. Each heartbeat is one
UpdateItem that reports the load and pushes `ttl` to three heartbeat intervals ahead, so a node
that dies silently drops out of placement within that time. The heartbeat is conditional on the
item existing: if it was removed (deleted by TTL after a long stall, or by hand) the node puts
its whole item again instead of writing a headless fragment with no address or capacity.

The node's state (active or draining) is kept here in memory as well as in the table, so a
re-registration never turns a draining node back into an active one.

The item and its TTL rules are the contract in `contracts.media_nodes`; the DynamoDB calls are
the node's own (this module is its adapter), made with boto3, which reads its region,
credentials and `AWS_ENDPOINT_URL_DYNAMODB` from the environment.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from contracts.media_nodes import HEARTBEAT_INTERVAL_SECONDS, MediaNode, ttl_for

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

CONDITION_FAILED = "ConditionalCheckFailedException"

_serializer = TypeSerializer()


def new_client() -> DynamoDBClient:
    """One client per node process, with bounded retries and timeouts: a heartbeat that
    cannot get through is retried on the next tick, not held for minutes."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "dynamodb",
        config=Config(
            retries={"mode": "standard", "max_attempts": 4}, connect_timeout=2, read_timeout=5
        ),
    )


def to_attribute(value: Any) -> Any:
    """A Python value as a DynamoDB attribute value (floats travel as decimals)."""
    return _serializer.serialize(Decimal(str(value)) if isinstance(value, float) else value)


def to_attributes(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item's attributes, leaving out the ones that are None (DynamoDB stores no null
    for an absent optional, such as a plain-http node's certificate fingerprint)."""
    return {name: to_attribute(value) for name, value in item.items() if value is not None}


def _condition_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == CONDITION_FAILED


class NodeRegistry:
    def __init__(
        self,
        table: str,
        client: DynamoDBClient | None = None,
        *,
        heartbeat_interval: float = HEARTBEAT_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if heartbeat_interval <= 0:
            raise ValueError("the heartbeat interval must be positive")
        self._table = table
        self._client = client
        self._clock = clock
        self.heartbeat_interval = heartbeat_interval
        self._node: MediaNode | None = None

    @property
    def client(self) -> DynamoDBClient:
        if self._client is None:
            self._client = new_client()
        return self._client

    @property
    def node(self) -> MediaNode:
        """The entry as this process last wrote it."""
        if self._node is None:
            raise RuntimeError("the node has not registered")
        return self._node

    def register(self, node: MediaNode) -> MediaNode:
        """Put the node's whole item (replacing any left by an earlier run with the same id)."""
        now = int(self._clock())
        self._node = dataclasses.replace(
            node,
            started_at=node.started_at or now,
            heartbeat_at=now,
            ttl=ttl_for(now, self.heartbeat_interval),
        )
        self._put(self._node)
        return self._node

    def heartbeat(self, load: int, cpu: float) -> bool:
        """Report load and CPU and extend the TTL. Returns False when the item was gone and
        the node registered again."""
        node = self.node
        now = int(self._clock())
        ttl = ttl_for(now, self.heartbeat_interval)
        cpu = min(1.0, max(0.0, cpu))
        self._node = dataclasses.replace(
            node, load=max(0, load), cpu=cpu, heartbeat_at=now, ttl=ttl
        )
        try:
            self.client.update_item(
                TableName=self._table,
                Key=to_attributes({"node_id": node.node_id}),
                # `load` is replaced, not added to: the node's own count is the truth, and it
                # absorbs the reservations placement made since the last heartbeat.
                UpdateExpression="SET #load = :load, cpu = :cpu, heartbeat_at = :now, #ttl = :ttl",
                ConditionExpression="attribute_exists(node_id)",
                ExpressionAttributeNames={"#load": "load", "#ttl": "ttl"},
                ExpressionAttributeValues={
                    ":load": to_attribute(self._node.load),
                    ":cpu": to_attribute(cpu),
                    ":now": to_attribute(now),
                    ":ttl": to_attribute(ttl),
                },
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise
            self._put(self._node)
            return False
        return True

    def drain(self) -> None:
        """Take no new meetings: placement skips a draining node and moves its meetings off."""
        node = dataclasses.replace(self.node, state="draining")
        self._node = node
        try:
            self.client.update_item(
                TableName=self._table,
                Key=to_attributes({"node_id": node.node_id}),
                UpdateExpression="SET #state = :draining",
                ConditionExpression="attribute_exists(node_id)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":draining": to_attribute("draining")},
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise
            self._put(node)

    def deregister(self) -> None:
        """Remove the item (at the end of a drain, or on a clean stop). Safe to call twice."""
        if self._node is None:
            return
        self.client.delete_item(
            TableName=self._table, Key=to_attributes({"node_id": self._node.node_id})
        )
        # A heartbeat after this is a bug in the caller (stop the heartbeat first); it raises
        # rather than silently putting the node back.
        self._node = None

    def _put(self, node: MediaNode) -> None:
        self.client.put_item(TableName=self._table, Item=to_attributes(node.to_item()))
