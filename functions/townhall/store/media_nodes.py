"""The MediaNodes table as the control plane reads it: live nodes, and stream reservations.

Each node writes its own item (`media_fleet.registry`); the item and its TTL rules are the
contract in `contracts.media_nodes`. Every read here filters on `ttl > now`: DynamoDB deletes
expired items only lazily, and moto never does. Which node to choose, and when to reserve, is
decided above (`townhall.media.nodes`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from contracts.media_nodes import MediaNode
from townhall.store import dynamo
from townhall.store.dynamo import failures_as_unavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger(__name__)

# Bounds a Scan of the registry: at a few hundred items (~300 bytes each) one page holds them
# all; the bound only stops a runaway loop.
MAX_SCAN_PAGES = 20


class MediaNodeTable:
    def __init__(self, table: str, client: DynamoDBClient | None = None) -> None:
        self._table = table
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        return self._client if self._client is not None else dynamo.client()

    def live(self, now: float) -> list[MediaNode]:
        """Every node whose heartbeat is current at `now`, active or draining.

        A Scan: the right tool at fleet sizes of hundreds of nodes (one page, a few RCU,
        consistent); docs/media-control.md says what to do past that.
        """
        request: dict[str, Any] = {"TableName": self._table, "ConsistentRead": True}
        nodes: list[MediaNode] = []
        for _ in range(MAX_SCAN_PAGES):
            with failures_as_unavailable("reading the media node registry"):
                page = self.client.scan(**request)
            for raw in page.get("Items", []):
                item = dynamo.from_ddb(raw)
                if not dynamo.is_live(item, now):
                    continue
                try:
                    nodes.append(MediaNode.from_item(item))
                except (KeyError, TypeError, ValueError):
                    # One bad item (a half-written test entry, a node of a newer version)
                    # must not stop every meeting from being placed.
                    log.warning("skipping malformed media node item %r", item.get("node_id"))
            last = page.get("LastEvaluatedKey")
            if not last:
                break
            request["ExclusiveStartKey"] = last
        return nodes

    def get(self, node_id: str, now: float) -> MediaNode | None:
        """The node, if its heartbeat is current at `now`."""
        with failures_as_unavailable(f"reading media node {node_id}"):
            raw = self.client.get_item(
                TableName=self._table,
                Key=dynamo.to_ddb({"node_id": node_id}),
                ConsistentRead=True,
            ).get("Item")
        if not raw:
            return None
        item = dynamo.from_ddb(raw)
        return MediaNode.from_item(item) if dynamo.is_live(item, now) else None

    def add_load(self, node_id: str, streams: int, *, most: int, now: float) -> MediaNode | None:
        """Add `streams` to the node's load if it is live at `now`, active, and its load is at
        most `most`. One conditional write; the node as updated, or None if it did not hold."""
        with failures_as_unavailable(f"reserving streams on media node {node_id}"):
            try:
                result = self.client.update_item(
                    TableName=self._table,
                    Key=dynamo.to_ddb({"node_id": node_id}),
                    UpdateExpression="ADD #load :streams",
                    ConditionExpression=(
                        "attribute_exists(node_id) AND #state = :active AND #ttl > :now"
                        " AND #load <= :most"
                    ),
                    ExpressionAttributeNames={"#load": "load", "#state": "state", "#ttl": "ttl"},
                    ExpressionAttributeValues={
                        ":streams": dynamo.value(streams),
                        ":active": dynamo.value("active"),
                        ":now": dynamo.value(int(now)),
                        ":most": dynamo.value(most),
                    },
                    ReturnValues="ALL_NEW",
                )
            except ClientError as exc:
                if dynamo.is_condition_failure(exc):
                    return None
                raise
        return MediaNode.from_item(dynamo.from_ddb(result["Attributes"]))

    def expire(self, node_id: str, heartbeat_at: int, now: float) -> bool:
        """End the node's life now (its `ttl`), unless it heartbeated after `heartbeat_at` or is
        out already: a node the control plane found lost. A node that is alive after all puts
        its `ttl` forward again at its next heartbeat. True for the one call that expired it."""
        with failures_as_unavailable(f"expiring media node {node_id}"):
            try:
                self.client.update_item(
                    TableName=self._table,
                    Key=dynamo.to_ddb({"node_id": node_id}),
                    UpdateExpression="SET #ttl = :now",
                    ConditionExpression="heartbeat_at = :seen AND #ttl > :now",
                    ExpressionAttributeNames={"#ttl": "ttl"},
                    ExpressionAttributeValues={
                        ":now": dynamo.value(int(now)),
                        ":seen": dynamo.value(heartbeat_at),
                    },
                )
            except ClientError as exc:
                if dynamo.is_condition_failure(exc):
                    return False
                raise
        return True

    def remove_load(self, node_id: str, streams: int) -> None:
        """Take `streams` off the node's load, unless that would go below zero (a heartbeat
        may already have replaced the load) or the node is gone."""
        with failures_as_unavailable(f"giving back streams on media node {node_id}"):
            try:
                self.client.update_item(
                    TableName=self._table,
                    Key=dynamo.to_ddb({"node_id": node_id}),
                    UpdateExpression="ADD #load :minus",
                    ConditionExpression="attribute_exists(node_id) AND #load >= :streams",
                    ExpressionAttributeNames={"#load": "load"},
                    ExpressionAttributeValues={
                        ":minus": dynamo.value(-streams),
                        ":streams": dynamo.value(streams),
                    },
                )
            except ClientError as exc:
                if not dynamo.is_condition_failure(exc):
                    raise
