"""The control plane's view of the media-node registry: which nodes are live, which accept a
meeting (least utilized first), and stream reservations on them.

The registry item is the contract in `contracts.media_nodes` (each node writes its own, from
`media_fleet.registry`); the table is read and written through `MediaNodeRecords`, whose
DynamoDB implementation is `townhall.store.media_nodes.MediaNodeTable`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from contracts.media_nodes import MediaNode
from townhall.store.media_nodes import MediaNodeTable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["MediaNode", "MediaNodeRecords", "NodeDirectory"]


class MediaNodeRecords(Protocol):
    """The registry's storage, as placement needs it (`MediaNodeTable` in production)."""

    def live(self, now: float) -> list[MediaNode]: ...

    def get(self, node_id: str, now: float) -> MediaNode | None: ...

    def add_load(
        self, node_id: str, streams: int, *, most: int, now: float
    ) -> MediaNode | None: ...

    def remove_load(self, node_id: str, streams: int) -> None: ...

    def expire(self, node_id: str, heartbeat_at: int, now: float) -> bool: ...


class NodeDirectory:
    """Live nodes and reservations, read once per placement (never per participant of a
    fan-out).

    `records` is the registry's storage; a table name stands for the DynamoDB table of that
    name (read with `client`, or the shared client).
    """

    def __init__(
        self,
        records: MediaNodeRecords | str,
        client: DynamoDBClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._records = MediaNodeTable(records, client) if isinstance(records, str) else records
        self._clock = clock

    def live(self) -> list[MediaNode]:
        """Every node whose heartbeat is current, active or draining."""
        return self._records.live(self._clock())

    def accepting(self, streams: int = 1) -> list[MediaNode]:
        """Live active nodes with room for `streams`, least utilized first (then least
        loaded, then by id, so that equal nodes are chosen in a stable order)."""
        now = self._clock()
        candidates = [n for n in self.live() if n.accepts_meetings(streams, now)]
        return sorted(candidates, key=lambda n: (n.utilization, n.load, n.node_id))

    def draining(self) -> list[MediaNode]:
        return [n for n in self.live() if n.state == "draining"]

    def get(self, node_id: str) -> MediaNode | None:
        return self._records.get(node_id, self._clock())

    def reserve(self, node: MediaNode, streams: int) -> MediaNode | None:
        """Add `streams` to the node's load if it is still live, active and has room.

        One conditional write, so concurrent placements cannot overfill a node between two of
        its heartbeats (the next heartbeat replaces the load with the node's own count).
        Returns the node as updated, or None when it no longer accepts the streams.
        """
        if streams <= 0:
            raise ValueError("reserve a positive number of streams")
        # A condition cannot do arithmetic: the most load that still leaves room, from the
        # capacity we read (a node's capacity is fixed for its life).
        return self._records.add_load(
            node.node_id, streams, most=node.capacity - streams, now=self._clock()
        )

    def declare_lost(self, node: MediaNode) -> bool:
        """The node is gone (its control API refused a connection, or accepted none in time):
        take it out of placement now instead of at the end of its `ttl` (up to three
        heartbeats later), unless it heartbeated since it was read. A node wrongly declared
        lost comes back at its next heartbeat. True if it was taken out."""
        return self._records.expire(node.node_id, node.heartbeat_at, self._clock())

    def unreserve(self, node_id: str, streams: int) -> None:
        """Give back a reservation that was not used (best effort: a heartbeat may already
        have replaced the load, and the load never goes below zero)."""
        self._records.remove_load(node_id, streams)
