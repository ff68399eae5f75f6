"""Open WebSocket connections in the Connections table (partition key `connection_id`).

`$connect` writes one item per connection; `$disconnect`, a 410 from the management API, or a
replacing connection deletes it. The TTL is the 2 hour connection cap plus a margin, so items
whose `$disconnect` never came (delivery is best-effort) expire on their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from townhall import clock
from townhall.store import dynamo

CONNECTION_TTL_SECONDS = 2 * 3600 + 600


@dataclass(frozen=True)
class Connection:
    connection_id: str
    meeting_id: str
    participant_id: str
    connected_at: int
    source_ip: str


class ConnectionRecords(Protocol):
    """The open connections as signaling keeps them (ConnectionStore is the DynamoDB one)."""

    def put(self, connection: Connection) -> None: ...

    def delete(self, connection_id: str) -> None: ...


@dynamo.store_boundary
class ConnectionStore:
    def __init__(self, table: str) -> None:
        self._table = table

    def put(self, connection: Connection) -> None:
        dynamo.client().put_item(
            TableName=self._table,
            Item=dynamo.to_ddb(
                {
                    "connection_id": connection.connection_id,
                    "meeting_id": connection.meeting_id,
                    "participant_id": connection.participant_id,
                    "connected_at": connection.connected_at,
                    "source_ip": connection.source_ip,
                    "ttl": int(clock.now()) + CONNECTION_TTL_SECONDS,
                }
            ),
        )

    def get(self, connection_id: str) -> Connection | None:
        raw = (
            dynamo.client()
            .get_item(
                TableName=self._table,
                Key=dynamo.to_ddb({"connection_id": connection_id}),
                ConsistentRead=True,
            )
            .get("Item")
        )
        if not raw:
            return None
        item = dynamo.from_ddb(raw)
        if not dynamo.is_live(item):
            return None
        return Connection(
            connection_id=item["connection_id"],
            meeting_id=item["meeting_id"],
            participant_id=item["participant_id"],
            connected_at=int(item["connected_at"]),
            source_ip=item.get("source_ip", ""),
        )

    def delete(self, connection_id: str) -> None:
        dynamo.client().delete_item(
            TableName=self._table, Key=dynamo.to_ddb({"connection_id": connection_id})
        )
