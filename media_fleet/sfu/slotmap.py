"""The slot map: which source feeds each slot of every subscriber, and the message that says so.

The rules are :mod:`~media_fleet.sfu.assignment`'s (pure): camera slots are last-N with
slot 0 the speaker slot at full quality and thumbnails on the low layer when there is
one; audio slots carry the loudest others; the screen slot the most recent sharer other
than the subscriber. :class:`SlotMap` keeps what those rules read besides the
publishers (join order, recent speakers, screen sharers), applies them to every ready
subscriber, points each slot's :class:`~media_fleet.sfu.forwarding.SlotForwarder` at its
source, and tells the subscriber when its map changed. A change of source only *selects*
the new source: a video slot keeps the old one until the new one's keyframe.
"""

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .assignment import assign_cameras, assign_stable
from .forwarding import Source
from .membership import Publisher, Quality, Slot, SlotKind, Subscriber
from .sdp import Label


@dataclass(frozen=True)
class SlotState:
    """A snapshot of one subscriber slot, for diagnostics and tests."""

    kind: SlotKind
    index: int
    mid: str | None
    participant_id: str | None
    "Assigned by the slot map."
    quality: Quality | None
    feeding_participant_id: str | None
    "Whose packets the slot forwards right now (None before the first keyframe)."
    feeding_label: Label | None
    feeding_ssrc: int | None


def slot_state(slot: Slot, sources_by_ssrc: Mapping[int, Source]) -> SlotState:
    rewriter = slot.forwarder.rewriter
    ssrc = rewriter.source if rewriter is not None else None
    feeding = sources_by_ssrc.get(ssrc) if ssrc is not None else None
    return SlotState(
        slot.kind,
        slot.index,
        slot.mid,
        slot.participant_id,
        slot.quality,
        feeding.participant_id if feeding is not None else None,
        feeding.label if feeding is not None else None,
        ssrc,
    )


def slots_message(subscriber: Subscriber) -> dict[str, Any]:
    """The ``slots`` message: every camera slot in order, the screen, every audio slot."""
    screen = subscriber.screen
    return {
        "type": "slots",
        "video": [
            {
                "slot": slot.index,
                "mid": slot.mid,
                "participant_id": slot.participant_id,
                "quality": slot.quality,
            }
            for slot in subscriber.cameras
        ],
        "screen": (
            {"mid": screen.mid, "participant_id": screen.participant_id}
            if screen is not None and screen.participant_id is not None
            else None
        ),
        "audio": [
            {"slot": slot.index, "mid": slot.mid, "participant_id": slot.participant_id}
            for slot in subscriber.audio
        ],
    }


def send_slots(subscriber: Subscriber) -> None:
    """Tell the subscriber its slot map, if it changed since it was last told."""
    message = json.dumps(slots_message(subscriber))
    if message != subscriber.last_slots_message and subscriber.messages.send_text(message):
        subscriber.last_slots_message = message


class SlotMap:
    """The room's slot-map inputs besides its publishers, and the evaluation over them.

    :param audio_slots: audio slots per subscriber (how many of the loudest are heard).
    """

    def __init__(self, audio_slots: int) -> None:
        self.audio_slots = audio_slots
        self.join_order: list[str] = []
        "Participants by first arrival (candidates for camera slots after the speakers)."
        self.recent_speakers: list[str] = []
        "Active speakers, most recent first."
        self.screen_order: list[str] = []
        "Screen sharers, most recent last."

    def joined(self, participant_id: str) -> None:
        if participant_id not in self.join_order:
            self.join_order.append(participant_id)

    def left(self, participant_id: str) -> None:
        if participant_id in self.join_order:
            self.join_order.remove(participant_id)

    def shares_screen(self, participant_id: str) -> None:
        self.screen_order.append(participant_id)

    def stopped_publishing(self, participant_id: str) -> None:
        if participant_id in self.recent_speakers:
            self.recent_speakers.remove(participant_id)
        if participant_id in self.screen_order:
            self.screen_order.remove(participant_id)

    def spoke(self, participant_id: str) -> None:
        """A new active speaker: first among the recent speakers."""
        if participant_id in self.recent_speakers:
            self.recent_speakers.remove(participant_id)
        self.recent_speakers.insert(0, participant_id)

    def evaluate(
        self,
        publishers: Mapping[str, Publisher],
        subscribers: Iterable[Subscriber],
        loudest: Sequence[str],
    ) -> None:
        """Re-compute every ready subscriber's slots and tell them what changed.

        :param loudest: participants by smoothed loudness, loudest first.
        """
        cameras = {pid for pid, p in publishers.items() if "camera" in p.sources}
        speakers = {pid for pid, p in publishers.items() if "audio" in p.sources}
        heard_first = [pid for pid in loudest if pid in speakers]
        for subscriber in subscribers:
            if not subscriber.ready:
                continue
            me = subscriber.participant_id
            occupants = assign_cameras(
                [slot.participant_id for slot in subscriber.cameras],
                me,
                self.recent_speakers,
                self.join_order,
                cameras,
            )
            for position, (slot, pid) in enumerate(zip(subscriber.cameras, occupants, strict=True)):
                quality: Quality = "full"
                if position > 0 and _source(publishers, pid, "camera-low") is not None:
                    quality = "low"
                _assign(publishers, slot, pid, quality if pid is not None else None)
            if subscriber.screen is not None:
                sharer = next((p for p in reversed(self.screen_order) if p != me), None)
                _assign(publishers, subscriber.screen, sharer, None)
            others = [pid for pid in heard_first if pid != me][: self.audio_slots]
            heard = assign_stable([slot.participant_id for slot in subscriber.audio], others)
            for slot, pid in zip(subscriber.audio, heard, strict=True):
                _assign(publishers, slot, pid, None)
            send_slots(subscriber)


def empty(slot: Slot) -> None:
    """Take the slot's participant and source away (its subscriber is leaving)."""
    slot.participant_id = None
    slot.quality = None
    slot.forwarder.select(None)


def _source(
    publishers: Mapping[str, Publisher], participant_id: str | None, label: Label
) -> Source | None:
    publisher = publishers.get(participant_id) if participant_id else None
    return publisher.sources.get(label) if publisher is not None else None


def _assign(
    publishers: Mapping[str, Publisher],
    slot: Slot,
    participant_id: str | None,
    quality: Quality | None,
) -> None:
    """Point the slot at a participant's source (or at nothing)."""
    label: Label = "audio" if slot.kind == "audio" else "screen"
    if slot.kind == "camera":
        label = "camera-low" if quality == "low" else "camera"
    source = _source(publishers, participant_id, label)
    slot.participant_id = participant_id if source is not None else None
    slot.quality = quality if source is not None and slot.kind == "camera" else None
    slot.forwarder.select(source)
