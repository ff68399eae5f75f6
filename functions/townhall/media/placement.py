"""Meeting placement: which media node hosts a meeting.

Every participant who joins asks `place()`, which keeps the meeting where it is while that node
is live, active and has room, and otherwise moves it to the least-utilized node that accepts
it. The placement itself is stored through `PlacementRecords` (in production
`townhall.store.placement.PlacementTable`: one item in the meeting's own partition).

Races. Two participants of one meeting may place it at the same moment, each picking a node.
The placement is written with a condition on what was read (absent, or still naming the node
that was found unusable), so exactly one write wins; the loser gives back its stream
reservation, re-reads the placement and follows the winner. Every place() also reserves its
streams on the node with a conditional write (see `NodeDirectory.reserve`), so a burst of
placements between two heartbeats spreads across nodes instead of piling onto the one that
looked emptiest, and never overfills a node.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from contracts.media_nodes import MediaNode
from townhall.errors import Conflict
from townhall.media.nodes import NodeDirectory
from townhall.store.placement import PLACEMENT_SK, Placement, PlacementTable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = [
    "PLACEMENT_SK",
    "MeetingPlacement",
    "NoMediaCapacity",
    "Placement",
    "PlacementRecords",
]

# Rounds of read, choose, write. A round is lost only to another placement of the same
# meeting landing in between, which then normally holds on the next read.
MAX_ATTEMPTS = 4
# Nodes tried per round, in order of utilization, when the best ones fill up concurrently.
MAX_CANDIDATES = 8


class NoMediaCapacity(Conflict):
    """No live, active media node has room for the meeting."""


class PlacementRecords(Protocol):
    """Where placements are kept (`PlacementTable` in production)."""

    def get(self, meeting_id: str) -> Placement | None: ...

    def put(self, placement: Placement, *, replacing: str | None) -> bool: ...

    def delete(self, meeting_id: str, *, node_id: str | None = None) -> bool: ...


class MeetingPlacement:
    """`records` is where placements are kept; a table name stands for the Meetings table of
    that name (read with `client`, or the shared client)."""

    def __init__(
        self,
        records: PlacementRecords | str,
        nodes: NodeDirectory,
        client: DynamoDBClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._records = PlacementTable(records, client) if isinstance(records, str) else records
        self._nodes = nodes
        self._clock = clock

    def place(self, meeting_id: str, streams_needed: int = 1) -> MediaNode:
        """The node that hosts the meeting, with `streams_needed` streams reserved on it.

        Raises NoMediaCapacity when no node can take the meeting, and Conflict when other
        placements of the same meeting kept winning (the caller retries).
        """
        if streams_needed <= 0:
            raise ValueError("streams_needed must be positive")
        for _ in range(MAX_ATTEMPTS):
            current = self.current(meeting_id)
            if current is not None:
                node = self._nodes.get(current.node_id)
                # A draining node is left even by meetings it already hosts: drain moves
                # participants off, and each one who asks again must land elsewhere.
                if node is not None and node.accepts_meetings(streams_needed, self._clock()):
                    reserved = self._nodes.reserve(node, streams_needed)
                    if reserved is not None:
                        return reserved
            moved = self._place_anew(meeting_id, streams_needed, current)
            if moved is not None:
                return moved
            # Lost the write to a concurrent placement: read it and follow it.
        raise Conflict("the meeting's media placement is busy; retry the request")

    def current(self, meeting_id: str) -> Placement | None:
        return self._records.get(meeting_id)

    def release(self, meeting_id: str, node_id: str | None = None) -> bool:
        """Forget the meeting's placement (when it ends). With `node_id`, only if it still
        names that node, so a late release cannot undo a newer placement. True if removed."""
        return self._records.delete(meeting_id, node_id=node_id)

    def _place_anew(
        self, meeting_id: str, streams: int, current: Placement | None
    ) -> MediaNode | None:
        """Reserve on the best node that accepts the meeting and record the placement.

        Returns None when a concurrent placement of the meeting won the write.
        """
        candidates = self._nodes.accepting(streams)
        for candidate in candidates[:MAX_CANDIDATES]:
            reserved = self._nodes.reserve(candidate, streams)
            if reserved is None:
                continue  # filled up or started draining since the scan
            placement = Placement(meeting_id, reserved.node_id, int(self._clock()))
            replacing = current.node_id if current is not None else None
            if self._records.put(placement, replacing=replacing):
                return reserved
            self._nodes.unreserve(reserved.node_id, streams)
            return None
        raise NoMediaCapacity("no media node has room for this meeting")
