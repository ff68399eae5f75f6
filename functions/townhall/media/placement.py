"""Meeting placement: which media node hosts a meeting.

A meeting's placement is one item in its own partition of the Meetings table,
`pk = M#{meeting_id}`, `sk = MEDIA`, holding `node_id` and `placed_at`. Every participant who
joins asks `place()`, which keeps the meeting where it is while that node is live, active and
has room, and otherwise moves it to the least-utilized node that accepts it.

Races. Two participants of one meeting may place it at the same moment, each picking a node.
The placement item is written with a condition on what was read (absent, or still naming the
node that was found unusable), so exactly one write wins; the loser gives back its stream
reservation, re-reads the item and follows the winner. Every place() also reserves its streams
on the node with a conditional write (see `NodeDirectory.reserve`), so a burst of placements
between two heartbeats spreads across nodes instead of piling onto the one that looked
emptiest, and never overfills a node.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from townhall.errors import Conflict
from townhall.media.nodes import MediaNode, NodeDirectory
from townhall.store import dynamo
from townhall.store.meetings import meeting_pk

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PLACEMENT_SK = "MEDIA"
# Rounds of read, choose, write. A round is lost only to another placement of the same
# meeting landing in between, which then normally holds on the next read.
MAX_ATTEMPTS = 4
# Nodes tried per round, in order of utilization, when the best ones fill up concurrently.
MAX_CANDIDATES = 8


class NoMediaCapacity(Conflict):
    """No live, active media node has room for the meeting."""


@dataclass(frozen=True)
class Placement:
    meeting_id: str
    node_id: str
    placed_at: int


class MeetingPlacement:
    def __init__(
        self,
        meetings_table: str,
        nodes: NodeDirectory,
        client: DynamoDBClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = meetings_table
        self._nodes = nodes
        self._client = client
        self._clock = clock

    @property
    def client(self) -> DynamoDBClient:
        return self._client if self._client is not None else dynamo.client()

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
        raw = self.client.get_item(
            TableName=self._table,
            Key=dynamo.to_ddb({"pk": meeting_pk(meeting_id), "sk": PLACEMENT_SK}),
            ConsistentRead=True,
        ).get("Item")
        if not raw:
            return None
        item = dynamo.from_ddb(raw)
        return Placement(
            meeting_id=meeting_id,
            node_id=str(item["node_id"]),
            placed_at=int(item.get("placed_at", 0)),
        )

    def release(self, meeting_id: str, node_id: str | None = None) -> bool:
        """Forget the meeting's placement (when it ends). With `node_id`, only if it still
        names that node, so a late release cannot undo a newer placement. True if removed."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": dynamo.to_ddb({"pk": meeting_pk(meeting_id), "sk": PLACEMENT_SK}),
        }
        if node_id is not None:
            request["ConditionExpression"] = "node_id = :node"
            request["ExpressionAttributeValues"] = {":node": dynamo.value(node_id)}
        try:
            self.client.delete_item(**request)
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return False
            raise
        return True

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
            if self._record(meeting_id, reserved.node_id, current):
                return reserved
            self._nodes.unreserve(reserved.node_id, streams)
            return None
        raise NoMediaCapacity("no media node has room for this meeting")

    def _record(self, meeting_id: str, node_id: str, expected: Placement | None) -> bool:
        """Write the placement if it is still what we read. False if someone else's won."""
        item = {
            "pk": meeting_pk(meeting_id),
            "sk": PLACEMENT_SK,
            "meeting_id": meeting_id,
            "node_id": node_id,
            "placed_at": int(self._clock()),
        }
        if expected is None:
            condition = "attribute_not_exists(pk)"
            values = None
        else:
            condition = "node_id = :expected"
            values = {":expected": dynamo.value(expected.node_id)}
        request: dict[str, Any] = {
            "TableName": self._table,
            "Item": dynamo.to_ddb(item),
            "ConditionExpression": condition,
        }
        if values:
            request["ExpressionAttributeValues"] = values
        try:
            self.client.put_item(**request)
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return False
            raise
        return True
