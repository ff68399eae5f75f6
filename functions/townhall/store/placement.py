"""Where a meeting's media is placed: one item in the meeting's own partition of the Meetings
table, `pk = M#{meeting_id}`, `sk = MEDIA` (`MEDIA#{room_id}` for a breakout room), holding
`node_id` and `placed_at`, and `pending` while the request that wrote it waits for its node's
answer.

No query of the meeting's other access patterns (`P#`, `C#`, `R#` prefixes, the `by_host`
index) sees it. It has no TTL: it is deleted when a session of the meeting ends. Which node to
choose, and when to move, is decided above (`townhall.media.placement`); every write here is
conditional on what the caller read, so two placements of one meeting cannot both win, and a
placement is taken back (`withdraw`) only while nobody but its writer has relied on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from townhall.model.breakout import split_media_room_id
from townhall.store import dynamo
from townhall.store.dynamo import failures_as_unavailable
from townhall.store.keys import meeting_pk

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PLACEMENT_SK = "MEDIA"


@dataclass(frozen=True)
class Placement:
    meeting_id: str
    node_id: str
    placed_at: int
    # A random id of the request that wrote this placement while the node has not yet
    # accepted that request; None once settled (the node accepted it, or another request of
    # the meeting relied on it).
    pending: str | None = None


def placement_key(media_room: str) -> dict[str, str]:
    """Where a media room's placement is kept: in its meeting's partition, `MEDIA` for the main
    room and `MEDIA#{room_id}` for a breakout room (`model.breakout.media_room_id`), so
    deleting a meeting deletes its breakout rooms' placements too."""
    meeting_id, room_id = split_media_room_id(media_room)
    sk = f"{PLACEMENT_SK}#{room_id}" if room_id else PLACEMENT_SK
    return {"pk": meeting_pk(meeting_id), "sk": sk}


class PlacementTable:
    def __init__(self, meetings_table: str, client: DynamoDBClient | None = None) -> None:
        self._table = meetings_table
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        return self._client if self._client is not None else dynamo.client()

    def get(self, meeting_id: str) -> Placement | None:
        """The meeting's placement, read strongly consistent."""
        with failures_as_unavailable(f"reading the media placement of {meeting_id}"):
            raw = self.client.get_item(
                TableName=self._table,
                Key=self._key(meeting_id),
                ConsistentRead=True,
            ).get("Item")
        if not raw:
            return None
        item = dynamo.from_ddb(raw)
        pending = item.get("pending")
        return Placement(
            meeting_id=meeting_id,
            node_id=str(item["node_id"]),
            placed_at=int(item.get("placed_at", 0)),
            pending=str(pending) if pending is not None else None,
        )

    def put(self, placement: Placement, *, replacing: str | None) -> bool:
        """Write the placement if the meeting still has none (`replacing=None`) or still names
        the node `replacing`. False when it did not: another placement won."""
        request: dict[str, Any] = {"TableName": self._table, "Item": self._item(placement)}
        if replacing is None:
            request["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            request["ConditionExpression"] = "node_id = :expected"
            request["ExpressionAttributeValues"] = {":expected": dynamo.value(replacing)}
        return self._conditional(
            f"placing meeting {placement.meeting_id}", lambda: self.client.put_item(**request)
        )

    def delete(self, meeting_id: str, *, node_id: str | None = None) -> bool:
        """Delete the placement; with `node_id`, only if it still names that node. True if it
        was deleted (or there was none to delete without a condition)."""
        request: dict[str, Any] = {"TableName": self._table, "Key": self._key(meeting_id)}
        if node_id is not None:
            request["ConditionExpression"] = "node_id = :node"
            request["ExpressionAttributeValues"] = {":node": dynamo.value(node_id)}
        return self._conditional(
            f"releasing the media placement of {meeting_id}",
            lambda: self.client.delete_item(**request),
        )

    def settle(self, placement: Placement) -> bool:
        """Clear the pending mark of `placement` if the stored one still carries it: from now
        on it cannot be withdrawn. False if it no longer does (already settled, withdrawn, or
        replaced by another placement)."""
        if placement.pending is None:
            raise ValueError("only a pending placement is settled")
        return self._conditional(
            f"settling the media placement of {placement.meeting_id}",
            lambda: self.client.update_item(
                TableName=self._table,
                Key=self._key(placement.meeting_id),
                UpdateExpression="REMOVE pending",
                ConditionExpression="pending = :pending",
                ExpressionAttributeValues={":pending": dynamo.value(placement.pending)},
            ),
        )

    def withdraw(self, placement: Placement, *, restoring: Placement | None) -> bool:
        """Take back the pending `placement` if the stored one is still it, unsettled: put back
        `restoring` (what it replaced), or delete it when it replaced nothing. False when it
        is no longer that pending placement (someone relied on it or replaced it): then it
        stays."""
        if placement.pending is None:
            raise ValueError("only a pending placement is withdrawn")
        condition: dict[str, Any] = {
            "ConditionExpression": "pending = :pending",
            "ExpressionAttributeValues": {":pending": dynamo.value(placement.pending)},
        }
        what = f"withdrawing the media placement of {placement.meeting_id}"
        if restoring is None:
            return self._conditional(
                what,
                lambda: self.client.delete_item(
                    TableName=self._table, Key=self._key(placement.meeting_id), **condition
                ),
            )
        return self._conditional(
            what,
            lambda: self.client.put_item(
                TableName=self._table, Item=self._item(restoring), **condition
            ),
        )

    @staticmethod
    def _key(meeting_id: str) -> dict[str, Any]:
        return dynamo.to_ddb(placement_key(meeting_id))

    @staticmethod
    def _item(placement: Placement) -> dict[str, Any]:
        item: dict[str, Any] = {
            **placement_key(placement.meeting_id),
            "meeting_id": placement.meeting_id,
            "node_id": placement.node_id,
            "placed_at": placement.placed_at,
        }
        if placement.pending is not None:
            item["pending"] = placement.pending
        return dynamo.to_ddb(item)

    @staticmethod
    def _conditional(what: str, write: Callable[[], object]) -> bool:
        with failures_as_unavailable(what):
            try:
                write()
            except ClientError as exc:
                if dynamo.is_condition_failure(exc):
                    return False
                raise
        return True
