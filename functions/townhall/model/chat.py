"""A chat message: to everyone, or privately to one participant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ChatMessage:
    # The `seq` of the action that sent it: ids order messages as they were sent.
    message_id: int
    sender_id: str
    sender_name: str
    recipient_id: str | None
    recipient_name: str | None
    text: str
    ts: int  # ms
    # The breakout room it was sent in ("" for the main room); a private message has none.
    room: str = ""

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
            "room": self.room,
        }
