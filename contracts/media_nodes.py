"""The media-node registry item (MediaNodes table, pk `node_id`, TTL `ttl`) and its TTL rules.

Each node writes its own item (`media_fleet.registry`): it registers on start, heartbeats its
load every second, which pushes `ttl` forward, and marks itself draining before it stops.
The control plane reads the table to place meetings (`townhall.store.media_nodes`). A node that
stops heartbeating is dead once its `ttl` passes; readers check it (`is_live`), because
DynamoDB deletes expired items only lazily and moto never does.

Items here are plain attribute dicts; each side converts them to its DynamoDB client's types.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

NodeState = Literal["active", "draining"]
NODE_STATES: tuple[NodeState, ...] = ("active", "draining")

# Every second: a node that stops (killed, stalled, its instance lost) is out of placement
# within three seconds, which the 3-second media recovery needs (docs/media-control.md). One
# small conditional write a second per node is the price.
HEARTBEAT_INTERVAL_SECONDS = 1.0
# A node is presumed dead after three missed heartbeats: one lost write (a throttle, a GC
# pause, a process paused for a second) must not take a healthy node out of placement.
HEARTBEATS_PER_TTL = 3


def ttl_for(now: float, heartbeat_interval: float = HEARTBEAT_INTERVAL_SECONDS) -> int:
    """The `ttl` a heartbeat at `now` writes (epoch seconds, rounded up: rounding down would
    take up to a second off the grace)."""
    return math.ceil(now + HEARTBEATS_PER_TTL * heartbeat_interval)


def is_live(ttl: int | None, now: float) -> bool:
    """An item with no ttl never expires; one whose ttl has passed is dead."""
    return ttl is None or int(ttl) > now


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
    # every start, pinned by the control plane. None for a plain-http node.
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
        return is_live(self.ttl, time.time() if now is None else now)

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
