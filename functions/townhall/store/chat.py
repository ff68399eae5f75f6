"""Chat messages in the Meetings table: `C#{message_id:012d}` in the meeting's partition.

A message's id is the `seq` of the action that sent it, so the sort key orders messages as
they were sent. Messages are kept for late joiners' snapshots and the summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from townhall.store import dynamo
from townhall.store.meetings import meeting_pk

CHAT_PREFIX = "C#"


def chat_sk(message_id: int) -> str:
    return f"{CHAT_PREFIX}{message_id:012d}"


@dataclass(frozen=True)
class ChatMessage:
    message_id: int
    sender_id: str
    sender_name: str
    recipient_id: str | None
    recipient_name: str | None
    text: str
    ts: int  # ms

    @property
    def private(self) -> bool:
        return self.recipient_id is not None

    def public(self) -> dict[str, Any]:
        """The message as clients see it (docs/signaling.md, `chat.message`)."""
        return {
            "message_id": self.message_id,
            "from": self.sender_id,
            "from_name": self.sender_name,
            "to": self.recipient_id,
            "to_name": self.recipient_name,
            "private": self.private,
            "text": self.text,
            "ts": self.ts,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ChatMessage:
        return cls(
            message_id=int(item["message_id"]),
            sender_id=item["from"],
            sender_name=item["from_name"],
            recipient_id=item.get("to"),
            recipient_name=item.get("to_name"),
            text=item["text"],
            ts=int(item["ts"]),
        )


class ChatStore:
    def __init__(self, table: str) -> None:
        self._table = table

    def item(self, meeting_id: str, message: ChatMessage) -> dict[str, Any]:
        """The message as an item to put in the sending action's transaction."""
        return {"pk": meeting_pk(meeting_id), "sk": chat_sk(message.message_id), **message.public()}

    def recent(self, meeting_id: str, limit: int = 100) -> list[ChatMessage]:
        """The last `limit` messages, oldest first."""
        page = dynamo.client().query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :c)",
            ExpressionAttributeValues={
                ":pk": dynamo.value(meeting_pk(meeting_id)),
                ":c": dynamo.value(CHAT_PREFIX),
            },
            ScanIndexForward=False,
            Limit=limit,
            ConsistentRead=True,
        )
        messages = [ChatMessage.from_item(dynamo.from_ddb(raw)) for raw in page.get("Items", [])]
        messages.reverse()
        return messages
