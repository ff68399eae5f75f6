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

Requests the node may refuse. A media request (`hold()`) places the meeting *before* it calls
the node: the token it sends names the node, and the placement is what makes concurrent
requests of one meeting agree on that node (placing only after the node accepted would let
two first requests each reach a different node, and the loser of the write would already be
connected to the wrong one). So a request that places the meeting writes the placement as
*pending* (marked with a random id of its own) and, once the node answered, either settles it
(`settle()`: the mark goes) or takes back what it took (`withdraw()`): its stream reservation,
and its placement, put back as it was before (deleted, or the placement it replaced) on the
condition that it still carries that request's mark. Any other request of the meeting that
relies on a pending placement first settles it (one conditional write, and only in the moment
between a placement and its node's answer), so a withdrawal never undoes the placement under
a request the node accepted: either the other request settled first and the withdrawal finds
no mark (the placement stays), or the withdrawal came first and the other request's settle
fails, and it reads the placement again before it calls any node.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from contracts.media_nodes import MediaNode
from townhall.errors import Conflict
from townhall.media.nodes import NodeDirectory
from townhall.store.placement import PLACEMENT_SK, Placement, PlacementTable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = [
    "PLACEMENT_SK",
    "Hold",
    "MeetingPlacement",
    "NoMediaCapacity",
    "PendingPlacementRecords",
    "Placement",
    "PlacementRecords",
]

# Rounds of read, choose, write. A round is lost only to another placement of the same
# meeting landing in between (or a pending one being withdrawn), which then normally holds on
# the next read.
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


@runtime_checkable
class PendingPlacementRecords(PlacementRecords, Protocol):
    """A store that can also take a pending placement back (`PlacementTable` can). With a
    store that cannot (a test's stand-in), `hold()` places as `place()` does, and a refused
    request gives back only its streams."""

    def settle(self, placement: Placement) -> bool: ...

    def withdraw(self, placement: Placement, *, restoring: Placement | None) -> bool: ...


@dataclass(frozen=True)
class Hold:
    """What one request took to reach the meeting's node: `streams` reserved on it (0 when
    it followed the placement without reserving), and the pending placement it wrote
    (`placed`, with what that replaced), if it wrote one."""

    node: MediaNode
    streams: int = 0
    placed: Placement | None = None
    replaced: Placement | None = None


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
        # The same store, when it can take a pending placement back.
        self._pending_records = (
            self._records if isinstance(self._records, PendingPlacementRecords) else None
        )
        self._nodes = nodes
        self._clock = clock

    def place(self, meeting_id: str, streams_needed: int = 1) -> MediaNode:
        """The node that hosts the meeting, with `streams_needed` streams reserved on it.

        Raises NoMediaCapacity when no node can take the meeting, and Conflict when other
        placements of the same meeting kept winning (the caller retries).
        """
        return self._hold(meeting_id, streams_needed, pending=False).node

    def hold(self, meeting_id: str, streams_needed: int, *, reserve: bool = True) -> Hold:
        """The node for one request of the meeting that its node may still refuse; pass the
        result to `settle()` once the node accepted, or to `withdraw()` when it did not.

        With `reserve`, `streams_needed` are reserved on the node, as `place()` does. Without,
        a meeting already on a live, active node just follows it (nothing is reserved); only a
        meeting that must be placed has its streams reserved. Raises as `place()`.
        """
        if not reserve:
            followed = self._follow(meeting_id)
            if followed is not None:
                return followed
        return self._hold(meeting_id, streams_needed, pending=True)

    def settle(self, hold: Hold) -> bool:
        """The node accepted the request: the placement it wrote can no longer be withdrawn.
        False if there was nothing to settle, or another request settled or replaced it."""
        if hold.placed is None or self._pending_records is None:
            return False
        return self._pending_records.settle(hold.placed)

    def withdraw(self, hold: Hold) -> bool:
        """The node refused the request (or it failed before the node answered): give back
        its streams, and put the placement back as it was before the request wrote one, unless
        another request of the meeting relied on it since. True if the placement was put back."""
        try:
            if hold.placed is None or self._pending_records is None:
                return False
            return self._pending_records.withdraw(hold.placed, restoring=hold.replaced)
        finally:
            if hold.streams:
                self._nodes.unreserve(hold.node.node_id, hold.streams)

    def current(self, meeting_id: str) -> Placement | None:
        return self._records.get(meeting_id)

    def release(self, meeting_id: str, node_id: str | None = None) -> bool:
        """Forget the meeting's placement (when it ends). With `node_id`, only if it still
        names that node, so a late release cannot undo a newer placement. True if removed."""
        return self._records.delete(meeting_id, node_id=node_id)

    def _hold(self, meeting_id: str, streams: int, *, pending: bool) -> Hold:
        if streams <= 0:
            raise ValueError("streams_needed must be positive")
        for _ in range(MAX_ATTEMPTS):
            current = self.current(meeting_id)
            if current is not None:
                node = self._nodes.get(current.node_id)
                # A draining node is left even by meetings it already hosts: drain moves
                # participants off, and each one who asks again must land elsewhere.
                if node is not None and node.accepts_meetings(streams, self._clock()):
                    reserved = self._nodes.reserve(node, streams)
                    if reserved is not None:
                        if self._rely_on(current):
                            return Hold(reserved, streams)
                        # Withdrawn (or replaced) since it was read: read it again.
                        self._nodes.unreserve(reserved.node_id, streams)
                        continue
            moved = self._place_anew(meeting_id, streams, current, pending=pending)
            if moved is not None:
                return moved
            # Lost the write to a concurrent placement: read it and follow it.
        raise Conflict("the meeting's media placement is busy; retry the request")

    def _follow(self, meeting_id: str) -> Hold | None:
        """The meeting's live, active node, reserving nothing; None if it has none."""
        for _ in range(MAX_ATTEMPTS):
            current = self.current(meeting_id)
            node = self._nodes.get(current.node_id) if current is not None else None
            if current is None or node is None or node.state != "active":
                return None
            if self._rely_on(current):
                return Hold(node)
            # A pending placement withdrawn, replaced or settled since it was read: again.
        return None

    def _rely_on(self, placement: Placement) -> bool:
        """Whether a request may use `placement`: a settled one, yes; a pending one (another
        request's node has not answered yet) only once this request settled it, so that it
        cannot be withdrawn under this one. False when it was withdrawn or replaced meanwhile
        (or settled by someone else: the caller reads it again)."""
        if placement.pending is None or self._pending_records is None:
            return True
        return self._pending_records.settle(placement)

    def _place_anew(
        self, meeting_id: str, streams: int, current: Placement | None, *, pending: bool
    ) -> Hold | None:
        """Reserve on the best node that accepts the meeting and record the placement.

        Returns None when a concurrent placement of the meeting won the write.
        """
        pending = pending and self._pending_records is not None
        candidates = self._nodes.accepting(streams)
        for candidate in candidates[:MAX_CANDIDATES]:
            reserved = self._nodes.reserve(candidate, streams)
            if reserved is None:
                continue  # filled up or started draining since the scan
            placement = Placement(
                meeting_id,
                reserved.node_id,
                int(self._clock()),
                pending=secrets.token_hex(8) if pending else None,
            )
            replacing = current.node_id if current is not None else None
            if self._records.put(placement, replacing=replacing):
                if not pending:
                    return Hold(reserved, streams)
                return Hold(reserved, streams, placed=placement, replaced=current)
            self._nodes.unreserve(reserved.node_id, streams)
            return None
        raise NoMediaCapacity("no media node has room for this meeting")
