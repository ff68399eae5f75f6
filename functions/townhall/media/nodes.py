"""The media-node registry: one item per SFU node in the MediaNodes table (pk `node_id`).

The node writes its own item (`media_fleet.registry.NodeRegistry`): it registers on start,
heartbeats its load every few seconds, which pushes `ttl` forward, and marks itself draining
before it stops. The control plane reads the table (`NodeDirectory`) to place meetings. A node
that stops heartbeating is dead once its `ttl` passes: every read here filters on it
(`dynamo.is_live`), because DynamoDB deletes expired items only lazily and moto never does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from townhall.store import dynamo

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger(__name__)

NodeState = Literal["active", "draining"]
NODE_STATES: tuple[NodeState, ...] = ("active", "draining")

HEARTBEAT_INTERVAL_SECONDS = 5.0
# A node is presumed dead after three missed heartbeats: one lost write (a throttle, a GC
# pause) must not take a healthy node out of placement.
HEARTBEATS_PER_TTL = 3
# Bounds a Scan of the registry: at a few hundred items (~300 bytes each) one page holds them
# all; the bound only stops a runaway loop.
MAX_SCAN_PAGES = 20


def ttl_for(now: float, heartbeat_interval: float = HEARTBEAT_INTERVAL_SECONDS) -> int:
    return int(now + HEARTBEATS_PER_TTL * heartbeat_interval)


@dataclass(frozen=True)
class MediaNode:
    node_id: str
    # Announced host:port for ICE; on EC2 the public address is not on the interface, so it
    # comes from configuration, not from the socket.
    address: str
    # Base URL of the node's control API (SDP offer/answer): https on the node's public
    # address, called by the control plane only (every call carries a media token).
    control_url: str
    # Most forwarded streams (one publisher track to one subscriber) the node takes.
    capacity: int
    # Forwarded streams now: reported by the node's heartbeat, and raised by placement's
    # reservations in between heartbeats.
    load: int = 0
    # Process CPU use, 0..1, as last reported.
    cpu: float = 0.0
    state: NodeState = "active"
    region: str | None = None
    az: str | None = None
    started_at: int = 0
    heartbeat_at: int = 0
    ttl: int = 0
    # SHA-256 (hex) of the DER certificate the node's control API serves: self-signed, made at
    # every start, pinned by the control plane (`node_client`). None for a plain-http node.
    control_cert_sha256: str | None = None

    def __post_init__(self) -> None:
        if not self.node_id or not self.address or not self.control_url:
            raise ValueError("a media node needs node_id, address and control_url")
        if self.capacity <= 0:
            raise ValueError("a media node needs a positive capacity")
        if self.state not in NODE_STATES:
            raise ValueError(f"unknown media node state {self.state!r}")

    @property
    def room(self) -> int:
        """Streams the node can still take (never negative: reservations may overshoot)."""
        return max(0, self.capacity - self.load)

    @property
    def utilization(self) -> float:
        return self.load / self.capacity

    def has_room_for(self, streams: int) -> bool:
        return self.room >= streams

    def is_live(self, now: float | None = None) -> bool:
        return dynamo.is_live({"ttl": self.ttl}, now)

    def accepts_meetings(self, streams: int, now: float | None = None) -> bool:
        """Live, active (not draining) and with room for `streams` more."""
        return self.is_live(now) and self.state == "active" and self.has_room_for(streams)

    def to_item(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> MediaNode:
        return cls(
            node_id=str(item["node_id"]),
            address=str(item["address"]),
            control_url=str(item["control_url"]),
            capacity=int(item["capacity"]),
            load=int(item.get("load", 0)),
            cpu=float(item.get("cpu", 0.0)),
            state=item.get("state", "active"),
            region=item.get("region"),
            az=item.get("az"),
            started_at=int(item.get("started_at", 0)),
            heartbeat_at=int(item.get("heartbeat_at", 0)),
            ttl=int(item.get("ttl", 0)),
            control_cert_sha256=(
                str(item["control_cert_sha256"]) if item.get("control_cert_sha256") else None
            ),
        )


class NodeDirectory:
    """The control plane's view of the registry: live nodes, and stream reservations.

    Reading every node is a Scan. That is the right tool at fleet sizes of hundreds of nodes
    (one page, a few RCU, consistent) and callers read it once per placement; see
    docs/media-control.md for what to do past that.
    """

    def __init__(
        self,
        table: str,
        client: DynamoDBClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = table
        self._client = client
        self._clock = clock

    @property
    def client(self) -> DynamoDBClient:
        return self._client if self._client is not None else dynamo.client()

    def live(self) -> list[MediaNode]:
        """Every node whose heartbeat is current, active or draining."""
        now = self._clock()
        request: dict[str, Any] = {"TableName": self._table, "ConsistentRead": True}
        nodes: list[MediaNode] = []
        for _ in range(MAX_SCAN_PAGES):
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

    def accepting(self, streams: int = 1) -> list[MediaNode]:
        """Live active nodes with room for `streams`, least utilized first."""
        now = self._clock()
        candidates = [n for n in self.live() if n.accepts_meetings(streams, now)]
        return sorted(candidates, key=lambda n: (n.utilization, n.load, n.node_id))

    def draining(self) -> list[MediaNode]:
        return [n for n in self.live() if n.state == "draining"]

    def get(self, node_id: str) -> MediaNode | None:
        raw = self.client.get_item(
            TableName=self._table,
            Key=dynamo.to_ddb({"node_id": node_id}),
            ConsistentRead=True,
        ).get("Item")
        if not raw:
            return None
        item = dynamo.from_ddb(raw)
        return MediaNode.from_item(item) if dynamo.is_live(item, self._clock()) else None

    def reserve(self, node: MediaNode, streams: int) -> MediaNode | None:
        """Add `streams` to the node's load if it is still live, active and has room.

        One conditional write, so concurrent placements cannot overfill a node between two of
        its heartbeats (the next heartbeat replaces the load with the node's own count).
        Returns the node as updated, or None when it no longer accepts the streams.
        """
        if streams <= 0:
            raise ValueError("reserve a positive number of streams")
        try:
            result = self.client.update_item(
                TableName=self._table,
                Key=dynamo.to_ddb({"node_id": node.node_id}),
                UpdateExpression="ADD #load :streams",
                ConditionExpression=(
                    "attribute_exists(node_id) AND #state = :active AND #ttl > :now"
                    " AND #load <= :most"
                ),
                ExpressionAttributeNames={
                    "#load": "load",
                    "#state": "state",
                    "#ttl": "ttl",
                },
                ExpressionAttributeValues={
                    ":streams": dynamo.value(streams),
                    ":active": dynamo.value("active"),
                    ":now": dynamo.value(int(self._clock())),
                    # DynamoDB conditions cannot do arithmetic: the most load that still
                    # leaves room, from the capacity we read (a node's capacity is fixed
                    # for its life).
                    ":most": dynamo.value(node.capacity - streams),
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return None
            raise
        return MediaNode.from_item(dynamo.from_ddb(result["Attributes"]))

    def unreserve(self, node_id: str, streams: int) -> None:
        """Give back a reservation that was not used (best effort: a heartbeat may already
        have replaced the load, and the load never goes below zero)."""
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
