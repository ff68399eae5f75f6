"""What the room tells a subscriber, and over what: JSON text, room → client.

- ``{"type": "slots", ...}``: the subscriber's slot map (built by
  :func:`~media_fleet.sfu.slotmap.slots_message`), when the channel opens and whenever it
  changes;
- ``{"type": "speaker", "participant_id": ...}``: the active speaker, when the channel opens
  and whenever it changes;
- ``{"type": "move"}``: the node is draining; ask signaling for another node.

A peer-connection subscriber hears them on its data channel ``"townhall"``
(:class:`DataChannelMessages`); a sink subscriber through a callback, or not at all.
docs/media-forwarding.md has the message shapes.
"""

import json
import logging
from collections.abc import Callable
from typing import Protocol

from aiortc import RTCDataChannel

logger = logging.getLogger(__name__)

DATA_CHANNEL_LABEL = "townhall"


class MessageChannel(Protocol):
    """Where a subscriber's messages go."""

    def send_text(self, text: str) -> bool:
        """Send one message; False if it could not go (the channel is not open)."""
        ...


class DataChannelMessages:
    """A subscribe connection's data channel."""

    def __init__(self, channel: RTCDataChannel, meeting_id: str) -> None:
        self.channel = channel
        self._meeting_id = meeting_id

    def send_text(self, text: str) -> bool:
        if self.channel.readyState != "open":
            return False
        try:
            self.channel.send(text)
        except Exception:
            logger.exception("room %s: data channel send failed", self._meeting_id)
            return False
        return True


class CallbackMessages:
    """Messages handed to a function (a sink subscriber's owner), or dropped if None."""

    def __init__(self, on_message: Callable[[str], None] | None, meeting_id: str) -> None:
        self._on_message = on_message
        self._meeting_id = meeting_id

    def send_text(self, text: str) -> bool:
        if self._on_message is None:
            return True
        try:
            self._on_message(text)
        except Exception:  # the owner's bug must not stop the room's other subscribers
            logger.exception("room %s: a subscriber's message callback failed", self._meeting_id)
            return False
        return True


def speaker_message(participant_id: str | None) -> str:
    return json.dumps({"type": "speaker", "participant_id": participant_id})


def move_message() -> str:
    return json.dumps({"type": "move"})
