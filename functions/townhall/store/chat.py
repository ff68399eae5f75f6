"""Chat messages in the Meetings table: `C#{message_id:012d}` in the session's partition.

A message's id is the `seq` of the action that sent it, so the sort key orders messages as
they were sent. Messages are kept for late joiners' snapshots and the summary. A breakout
room's messages are in the same order, with their `room`: a page entering a room reads the
room's recent messages by filter, a bounded number of pages back.
"""

from __future__ import annotations

from typing import Any, Protocol

from townhall.model.chat import ChatMessage
from townhall.model.session import SessionKey
from townhall.store import dynamo
from townhall.store.keys import session_pk
from townhall.store.writes import AddChatMessage

CHAT_PREFIX = "C#"
# Pages of 100 a room's recent messages are looked for in (newest first).
MAX_RECENT_PAGES = 10


def chat_sk(message_id: int) -> str:
    return f"{CHAT_PREFIX}{message_id:012d}"


def message_from_item(item: dict[str, Any]) -> ChatMessage:
    return ChatMessage(
        message_id=int(item["message_id"]),
        sender_id=item["from"],
        sender_name=item["from_name"],
        recipient_id=item.get("to"),
        recipient_name=item.get("to_name"),
        text=item["text"],
        ts=int(item["ts"]),
        room=str(item.get("room", "")),
    )


def add_message(table: str, session: SessionKey, op: AddChatMessage) -> list[dynamo.TransactItem]:
    """The message, put in the sending action's transaction (its id is that action's seq)."""
    message = op.message
    item = {"pk": session_pk(session), "sk": chat_sk(message.message_id), **message.public()}
    return [dynamo.TransactItem(dynamo.put(table, item))]


class ChatRecords(Protocol):
    """A session's chat as the services read it (ChatStore is the DynamoDB one; messages are
    written by the sending action's `AddChatMessage`)."""

    def all(self, session: SessionKey) -> list[ChatMessage]: ...

    def recent(
        self, session: SessionKey, limit: int = 100, room: str | None = None
    ) -> list[ChatMessage]: ...


@dynamo.store_boundary
class ChatStore:
    def __init__(self, table: str) -> None:
        self._table = table

    def all(self, session: SessionKey) -> list[ChatMessage]:
        """Every message of the session, oldest first (the summary; bounded pages)."""
        items = dynamo.query_all(
            self._table,
            "pk = :pk AND begins_with(sk, :c)",
            {":pk": session_pk(session), ":c": CHAT_PREFIX},
            consistent=True,
        )
        return [message_from_item(item) for item in items]

    def recent(
        self, session: SessionKey, limit: int = 100, room: str | None = None
    ) -> list[ChatMessage]:
        """The last `limit` messages, oldest first: of every room, or, with `room`, the public
        messages of that room ("" the main room) and every private one."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :c)",
            "ExpressionAttributeValues": {
                ":pk": dynamo.value(session_pk(session)),
                ":c": dynamo.value(CHAT_PREFIX),
            },
            "ScanIndexForward": False,
            "Limit": limit if room is None else 100,
            "ConsistentRead": True,
        }
        if room is not None:
            # Messages written before rooms existed have no `room`: the main room's.
            main = "attribute_not_exists(#room) OR #room = :empty"
            request["FilterExpression"] = (
                f"attribute_type(#to, :s) OR {main if not room else '#room = :room'}"
            )
            request["ExpressionAttributeNames"] = {"#room": "room", "#to": "to"}
            values = request["ExpressionAttributeValues"]
            values[":s"] = dynamo.value("S")
            values.update({":room": dynamo.value(room)} if room else {":empty": dynamo.value("")})
        messages: list[ChatMessage] = []
        for _ in range(1 if room is None else MAX_RECENT_PAGES):
            page = dynamo.client().query(**request)
            messages.extend(message_from_item(dynamo.from_ddb(raw)) for raw in page["Items"])
            last = page.get("LastEvaluatedKey")
            if len(messages) >= limit or not last:
                break
            request["ExclusiveStartKey"] = last
        messages = messages[:limit]
        messages.reverse()
        return messages
