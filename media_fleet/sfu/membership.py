"""Who is in a room, and what each has: publishers and their sources, subscribers and their slots.

A participant may be a **publisher** (a publish connection: audio, camera, camera-low,
screen, each a :class:`~media_fleet.sfu.forwarding.Source`) and a **subscriber** (slots:
``video_slots`` cameras, a screen, ``audio_slots`` audios). A subscriber's slots send
through a peer connection (:class:`SubscribeConnection`, negotiated once) or, for a
subscriber that is not a browser (a program worker, a test), through sinks its owner made.
The records here hold state only; :class:`~media_fleet.sfu.room.MeetingRoom` changes them.
"""

from dataclasses import dataclass, field
from typing import Literal

from aiortc import RTCPeerConnection, RTCRtpTransceiver

from media_fleet.rtc import seams

from .feedback import SlotFeedback
from .forwarding import SlotForwarder, Source
from .messages import MessageChannel
from .sdp import Label

SlotKind = Literal["camera", "screen", "audio"]
Quality = Literal["full", "low"]


@dataclass(eq=False)
class Publisher:
    """One participant's publish connection and the tracks it brings in."""

    participant_id: str
    pc: RTCPeerConnection
    sources: dict[Label, Source] = field(default_factory=dict)
    # One REMB for all the connection's video, not one per stream (see the class).
    bandwidth: seams.ReceiveBandwidthEstimate = field(
        default_factory=seams.ReceiveBandwidthEstimate
    )


@dataclass(eq=False)
class Slot:
    """One place in a subscriber's layout, who the slot map puts there, and its stream."""

    kind: SlotKind
    index: int
    forwarder: SlotForwarder
    feedback: SlotFeedback
    mid: str | None = None
    "The transceiver's mid on a peer connection (the client finds the slot's track by it)."
    participant_id: str | None = None
    "Who the slot map assigns to the slot."
    quality: Quality | None = None


@dataclass(eq=False)
class SubscribeConnection:
    """A subscriber's peer connection: one send-only transceiver per slot, a data channel."""

    pc: RTCPeerConnection
    transceivers: list[RTCRtpTransceiver]
    "One per slot, in the order of :meth:`Subscriber.slots`."
    answered: bool = False
    "The answer was accepted and the slots have their sinks."


@dataclass(eq=False)
class Subscriber:
    """One subscriber's slots and where its messages go."""

    participant_id: str
    cameras: list[Slot]
    screen: Slot | None
    audio: list[Slot]
    messages: MessageChannel
    connection: SubscribeConnection | None = None
    "None for a subscriber whose slots feed sinks of its owner's (``subscribe_sinks``)."
    ready: bool = False
    "The slots take sources: answered and connected, or sinks attached (a keyframe sent earlier would be lost)."
    last_slots_message: str | None = None

    def slots(self) -> list[Slot]:
        """Camera slots, the screen slot (if any), audio slots."""
        screen = [self.screen] if self.screen is not None else []
        return [*self.cameras, *screen, *self.audio]
