"""One meeting's forwarding room: publishers' tracks in, subscribers' slots out, no codecs.

:class:`MeetingRoom` is the room's public API, and its membership: who publishes and who
subscribes, joining, leaving, closing, one negotiation at a time per participant, and the
timer. The rest is one module per concept (docs/media-forwarding.md has the rules):

- :mod:`~media_fleet.sfu.negotiation`: the aiortc peer connections, negotiated once;
- :mod:`~media_fleet.sfu.membership`: the records (publisher and sources, subscriber and
  slots);
- :mod:`~media_fleet.sfu.forwarding`: the hot path, per incoming packet and per slot;
- :mod:`~media_fleet.sfu.sink`: the protocol through which a slot's packets leave, and
  :mod:`~media_fleet.sfu.peer_connection_sink`, the sink of a subscribe connection;
- :mod:`~media_fleet.sfu.feedback`: keyframe requests, NACK/RTX, REMB;
- :mod:`~media_fleet.sfu.slotmap`: which source feeds which slot (rules in
  :mod:`~media_fleet.sfu.assignment`);
- :mod:`~media_fleet.sfu.messages`: what the room tells subscribers;
- :mod:`~media_fleet.sfu.statistics`: the worker's forwarding figures, the room's rate.

The timer ticks every :data:`TICK_INTERVAL`: the speaker detector's update, the slot map
re-evaluated (at once when the speaker changes, else every :data:`EVALUATE_INTERVAL`),
keyframe requests for pending switches, and the packet rate.
"""

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.mediastreams import MediaStreamTrack

from contracts.node_api import IceServer
from media_fleet.rtc import seams
from media_fleet.rtp.speaker import SpeakerDetector

from . import negotiation
from .feedback import SWITCH_KEYFRAME_INTERVAL, SlotFeedback, request_keyframe
from .forwarding import SlotForwarder, Source, receive_hook
from .membership import Publisher, Slot, SlotKind, SubscribeConnection, Subscriber
from .messages import (
    DATA_CHANNEL_LABEL,
    CallbackMessages,
    DataChannelMessages,
    move_message,
    speaker_message,
)
from .peer_connection_sink import PeerConnectionSink
from .sdp import OfferedTrack, announce_host, inspect_offer
from .sink import Sink
from .slotmap import SlotMap, SlotState, empty, send_slots, slot_state
from .statistics import (
    ForwardingStats,
    PacketRate,
    latency_bucket_bounds_ns,
    latency_summary,
)

__all__ = [
    "DATA_CHANNEL_LABEL",
    "EVALUATE_INTERVAL",
    "TICK_INTERVAL",
    "ForwardingStats",
    "MeetingRoom",
    "SlotState",
    "latency_bucket_bounds_ns",
    "latency_summary",
]

logger = logging.getLogger(__name__)

TICK_INTERVAL = 0.1
"Seconds between timer ticks: speaker update and keyframe requests for pending switches."
EVALUATE_INTERVAL = 0.25
"Seconds between slot-map re-evaluations (also done at once when participants change)."


class MeetingRoom:
    """The forwarding room of one meeting on this node.

    :param meeting_id: the meeting's id (for logs).
    :param video_slots: camera slots per subscriber (last-N); slot 0 is the speaker slot.
    :param audio_slots: audio slots per subscriber (the loudest others).
    :param announced_host: if set, the address written into every ICE candidate of the SDP
        the room hands out (on EC2 the public address is not on the interface).
    :param forwarding: the worker's forwarding figures, which every room of the worker
        records into (default: the room's own).
    """

    def __init__(
        self,
        meeting_id: str,
        *,
        video_slots: int = 9,
        audio_slots: int = 3,
        announced_host: str | None = None,
        forwarding: ForwardingStats | None = None,
    ) -> None:
        if video_slots < 1 or audio_slots < 1:
            raise ValueError("a room needs at least one camera slot and one audio slot")
        self.meeting_id = meeting_id
        self.video_slots = video_slots
        self.audio_slots = audio_slots
        self.announced_host = announced_host
        self.forwarding = forwarding if forwarding is not None else ForwardingStats()
        self._publishers: dict[str, Publisher] = {}
        self._subscribers: dict[str, Subscriber] = {}
        self._sources_by_ssrc: dict[int, Source] = {}
        self._slot_map = SlotMap(audio_slots)
        self._detector: SpeakerDetector[str] = SpeakerDetector()
        self._speaker: str | None = None
        self._closed = False
        self._timer: asyncio.Task[None] | None = None
        self._lost_tasks: set[asyncio.Task[None]] = set()
        self._last_evaluation = -math.inf
        self._rate = PacketRate()
        self._locks: dict[str, asyncio.Lock] = {}

    # --- public API -------------------------------------------------------------------

    async def publish(
        self, participant_id: str, offer_sdp: str, ice_servers: Sequence[IceServer] = ()
    ) -> str:
        """Accept a publisher's offer and return the answer SDP.

        The m-lines are labelled by position (audio; camera, camera-low, screen). Publishing
        again replaces the participant's previous publish connection (e.g. to start a screen
        share). Raises ValueError with the reason when the offer is unusable.
        """
        async with self._lock_for(participant_id):
            return await self._publish(participant_id, offer_sdp, ice_servers)

    async def subscribe(self, participant_id: str, ice_servers: Sequence[IceServer] = ()) -> str:
        """Create the participant's subscribe connection and return the room's offer SDP.

        The offer has ``video_slots`` camera slots, then one screen slot, then
        ``audio_slots`` audio slots (send-only, VP8 + H.264 and Opus with RTX), then the data
        channel ``"townhall"``. Subscribing again replaces the previous connection.
        """
        async with self._lock_for(participant_id):
            return await self._subscribe(participant_id, ice_servers)

    async def accept_answer(self, participant_id: str, answer_sdp: str) -> None:
        """Apply the participant's answer to the subscribe offer; the slots start then.

        Raises KeyError if the participant has no pending subscribe connection, and
        ValueError if the answer is refused.
        """
        async with self._lock_for(participant_id):
            await self._accept_answer(participant_id, answer_sdp)

    async def subscribe_sinks(
        self,
        subscriber_id: str,
        *,
        cameras: Sequence[Sink] = (),
        screen: Sink | None = None,
        audio: Sequence[Sink] = (),
        on_message: Callable[[str], None] | None = None,
    ) -> None:
        """Subscribe with the caller's sinks instead of a peer connection.

        For a subscriber that is not a browser (a program worker, a test): one slot per sink,
        ``cameras`` in slot order (the first is the speaker slot), the screen slot only if
        ``screen`` is given. The slot map treats it as any subscriber, and its slots take
        sources at once. ``on_message`` gets the JSON messages a data channel would. Each
        sink is attached once and detached when the subscriber leaves (``leave``) or the
        room closes. Subscribing again replaces the previous subscription.
        """
        async with self._lock_for(subscriber_id):
            self._check_open()
            await self._close_subscriber(subscriber_id)
            subscriber = Subscriber(
                subscriber_id,
                [self._new_slot("camera", index) for index in range(len(cameras))],
                self._new_slot("screen", 0) if screen is not None else None,
                [self._new_slot("audio", index) for index in range(len(audio))],
                CallbackMessages(on_message, self.meeting_id),
                ready=True,
            )
            sinks = [*cameras, *([screen] if screen is not None else []), *audio]
            for slot, sink in zip(subscriber.slots(), sinks, strict=True):
                slot.forwarder.attach(sink, slot.feedback)
            self._subscribers[subscriber_id] = subscriber
            self._slot_map.joined(subscriber_id)
            self._evaluate()
            subscriber.messages.send_text(speaker_message(self._speaker))
            self._start_timer()

    async def leave(self, participant_id: str) -> None:
        """Close the participant's connections, forget their sources and free their slots."""
        async with self._lock_for(participant_id):
            await self._close_publisher(participant_id)
            await self._close_subscriber(participant_id)
            self._slot_map.left(participant_id)
            self._evaluate()

    async def tell_clients_to_move(self) -> None:
        """Send ``{"type": "move"}`` to every subscriber (the node is draining)."""
        for subscriber in list(self._subscribers.values()):
            subscriber.messages.send_text(move_message())
        await asyncio.sleep(0)  # let the SCTP transport pick the messages up

    async def close(self) -> None:
        """Stop the timer and close every connection. The room cannot be used again."""
        self._closed = True
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        for participant_id in list(self._publishers):
            await self._close_publisher(participant_id)
        for participant_id in list(self._subscribers):
            await self._close_subscriber(participant_id)
        if self._lost_tasks:
            await asyncio.gather(*self._lost_tasks, return_exceptions=True)
        self._slot_map.join_order.clear()

    def sessions(self) -> int:
        """Participants with a publish or a subscribe connection (or sinks)."""
        return len(self._publishers.keys() | self._subscribers.keys())

    def forwarded_streams(self) -> int:
        """Slots currently fed by a source, summed over all subscribers."""
        return sum(
            1
            for subscriber in self._subscribers.values()
            for slot in subscriber.slots()
            if slot.forwarder.rewriter is not None and slot.forwarder.rewriter.source is not None
        )

    def packets_per_second(self) -> float:
        """Forwarded packets per second, measured over the last second or so."""
        return self._rate.per_second

    # --- diagnostics (also used by the tests) -------------------------------------------

    @property
    def active_speaker(self) -> str | None:
        return self._speaker

    def slot_states(self, participant_id: str) -> list[SlotState]:
        """The participant's subscribe slots: camera slots, the screen slot, audio slots."""
        subscriber = self._subscribers.get(participant_id)
        if subscriber is None:
            return []
        return [slot_state(slot, self._sources_by_ssrc) for slot in subscriber.slots()]

    def rtp_receivers(self) -> list[RTCRtpReceiver]:
        """Every hooked publisher receiver (to prove none of them decodes)."""
        return [s.receiver for p in self._publishers.values() for s in p.sources.values()]

    def rtp_senders(self) -> list[RTCRtpSender]:
        """Every slot sender (to prove none of them encodes)."""
        return [
            transceiver.sender
            for subscriber in self._subscribers.values()
            if subscriber.connection is not None
            for transceiver in subscriber.connection.transceivers
        ]

    def peer_connections(self, participant_id: str | None = None) -> list[RTCPeerConnection]:
        """The room's connections (of one participant, if given): publish, then subscribe."""
        publish = [
            p.pc
            for pid, p in self._publishers.items()
            if participant_id is None or pid == participant_id
        ]
        subscribe = [
            s.connection.pc
            for pid, s in self._subscribers.items()
            if s.connection is not None and (participant_id is None or pid == participant_id)
        ]
        return publish + subscribe

    # --- publishing --------------------------------------------------------------------

    async def _publish(
        self, participant_id: str, offer_sdp: str, ice_servers: Sequence[IceServer]
    ) -> str:
        self._check_open()
        tracks = inspect_offer(offer_sdp)
        await self._close_publisher(participant_id)
        pc = negotiation.new_peer_connection(ice_servers)
        publisher = Publisher(participant_id, pc)
        offered = negotiation.add_receivers(pc, tracks)
        self._forget_when_lost(participant_id, pc, "publish")

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            try:
                self._hook_track(publisher, offered, track)
            except Exception:
                logger.exception("room %s: hooking a track of %s failed", self.meeting_id, track)

        await negotiation.answer(pc, offer_sdp)
        if self._closed:  # closed while negotiating
            await pc.close()
            self._check_open()
        negotiation.enlarge_receive_buffers(pc, self.meeting_id)
        self._publishers[participant_id] = publisher
        self._slot_map.joined(participant_id)
        if "screen" in publisher.sources:
            self._slot_map.shares_screen(participant_id)
        self._evaluate()
        self._start_timer()
        return announce_host(pc.localDescription.sdp, self.announced_host)

    def _hook_track(
        self,
        publisher: Publisher,
        offered: dict[RTCRtpTransceiver, OfferedTrack],
        track: MediaStreamTrack,
    ) -> None:
        transceiver = next(t for t in offered if t.receiver.track is track)
        label = offered[transceiver].label
        parameters = seams.slot_parameters(transceiver)
        receiver = transceiver.receiver
        source = Source(
            publisher.participant_id,
            label,
            receiver,
            parameters.payload_type,
            parameters.rtx_payload_type,
            seams.discard_encoded_frames(receiver),
            parameters.mime_type.lower(),
        )
        publisher.sources[label] = source
        # not aiortc's handler: no depayload, jitter buffer or PLI-on-gap; REMB, receiver
        # reports and NACKs to the publisher stay
        seams.install_forwarding_receive_hook(
            receiver,
            receive_hook(source, self._learn_ssrc, self._detector.add_level),
            publisher.bandwidth,
        )

    def _learn_ssrc(self, source: Source, ssrc: int) -> None:
        if source.ssrc is not None and self._sources_by_ssrc.get(source.ssrc) is source:
            del self._sources_by_ssrc[source.ssrc]
        source.ssrc = ssrc
        self._sources_by_ssrc[ssrc] = source
        for subscriber in self._subscribers.values():  # slots waiting for this source
            for slot in subscriber.slots():
                if slot.forwarder.source is source:
                    slot.forwarder.reselect()

    async def _close_publisher(self, participant_id: str) -> None:
        publisher = self._publishers.pop(participant_id, None)
        if publisher is None:
            return
        for source in publisher.sources.values():
            if source.ssrc is not None and self._sources_by_ssrc.get(source.ssrc) is source:
                del self._sources_by_ssrc[source.ssrc]
            source.slots.clear()
            source.batches.clear()
        self._detector.remove(participant_id)
        self._slot_map.stopped_publishing(participant_id)
        self._evaluate()
        await negotiation.close(publisher.pc, self.meeting_id, participant_id, "publish")

    # --- subscribing -------------------------------------------------------------------

    async def _subscribe(self, participant_id: str, ice_servers: Sequence[IceServer]) -> str:
        self._check_open()
        await self._close_subscriber(participant_id)
        pc = negotiation.new_peer_connection(ice_servers)
        cameras = [self._new_slot("camera", index) for index in range(self.video_slots)]
        screen = self._new_slot("screen", 0)
        audio = [self._new_slot("audio", index) for index in range(self.audio_slots)]
        transceivers = [
            negotiation.add_slot(pc, "audio" if slot.kind == "audio" else "video")
            for slot in (*cameras, screen, *audio)
        ]
        channel = pc.createDataChannel(DATA_CHANNEL_LABEL)
        subscriber = Subscriber(
            participant_id,
            cameras,
            screen,
            audio,
            DataChannelMessages(channel, self.meeting_id),
            SubscribeConnection(pc, transceivers),
        )
        self._forget_when_lost(participant_id, pc, "subscribe")

        @pc.on("connectionstatechange")
        def on_state() -> None:
            try:
                connection = subscriber.connection
                if pc.connectionState == "connected" and connection and connection.answered:
                    subscriber.ready = True
                    self._evaluate()
            except Exception:
                logger.exception("room %s: starting %s's slots failed", self.meeting_id, pc)

        @channel.on("open")
        def on_open() -> None:
            try:
                self._send_state(subscriber)
            except Exception:
                logger.exception("room %s: greeting %s failed", self.meeting_id, participant_id)

        await negotiation.offer(pc)
        if self._closed:
            await pc.close()
            self._check_open()
        self._subscribers[participant_id] = subscriber
        self._slot_map.joined(participant_id)
        self._start_timer()
        return announce_host(pc.localDescription.sdp, self.announced_host)

    def _new_slot(self, kind: SlotKind, index: int) -> Slot:
        forwarder = SlotForwarder(
            "audio" if kind == "audio" else "video",
            self._sources_by_ssrc,
            self.forwarding.record,
        )
        return Slot(kind, index, forwarder, SlotFeedback(forwarder, self._sources_by_ssrc))

    async def _accept_answer(self, participant_id: str, answer_sdp: str) -> None:
        self._check_open()
        subscriber = self._subscribers.get(participant_id)
        connection = subscriber.connection if subscriber is not None else None
        if subscriber is None or connection is None:
            raise KeyError(f"{participant_id} has no subscribe connection")
        if connection.answered:
            raise ValueError(f"{participant_id}'s subscribe connection is already negotiated")
        try:
            negotiated = await negotiation.accept(connection.pc, answer_sdp)
            for slot, transceiver in zip(subscriber.slots(), connection.transceivers, strict=True):
                sink = PeerConnectionSink(transceiver, negotiated)
                slot.mid = sink.mid
                slot.forwarder.attach(sink, slot.feedback)
        except Exception as error:
            raise ValueError(f"the subscribe answer was refused: {error}") from error
        connection.answered = True
        if connection.pc.connectionState == "connected":
            subscriber.ready = True
            self._evaluate()

    async def _close_subscriber(self, participant_id: str) -> None:
        subscriber = self._subscribers.pop(participant_id, None)
        if subscriber is None:
            return
        for slot in subscriber.slots():
            empty(slot)
            slot.forwarder.detach()
            self._rate.retire(slot.forwarder.forwarded)
        if subscriber.connection is not None:
            await negotiation.close(
                subscriber.connection.pc, self.meeting_id, participant_id, "subscribe"
            )

    def _send_state(self, subscriber: Subscriber) -> None:
        """On the channel's open: the current slot map and active speaker."""
        subscriber.last_slots_message = None
        if subscriber.ready:
            send_slots(subscriber)
        subscriber.messages.send_text(speaker_message(self._speaker))

    # --- membership --------------------------------------------------------------------

    def _lock_for(self, participant_id: str) -> asyncio.Lock:
        """One participant's negotiations and leave run one at a time."""
        return self._locks.setdefault(participant_id, asyncio.Lock())

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"room {self.meeting_id} is closed")

    def _forget_when_lost(self, participant_id: str, pc: RTCPeerConnection, what: str) -> None:
        """A client that vanishes (closed its side, or ICE consent ran out) never calls leave:
        its connection's failure frees its sources and slots, so drain and load stay true."""

        def lost() -> None:
            if self._closed:
                return
            task = asyncio.ensure_future(self._drop_lost(participant_id, pc, what))
            self._lost_tasks.add(task)
            task.add_done_callback(self._lost_tasks.discard)

        negotiation.when_lost(pc, lost)

    async def _drop_lost(self, participant_id: str, pc: RTCPeerConnection, what: str) -> None:
        try:
            async with self._lock_for(participant_id):
                if what == "publish":
                    current = self._publishers.get(participant_id)
                    if current is not None and current.pc is pc:
                        await self._close_publisher(participant_id)
                else:
                    subscriber = self._subscribers.get(participant_id)
                    connection = subscriber.connection if subscriber is not None else None
                    if connection is not None and connection.pc is pc:
                        await self._close_subscriber(participant_id)
                if (
                    participant_id not in self._publishers
                    and participant_id not in self._subscribers
                ):
                    self._slot_map.left(participant_id)
                self._evaluate()
        except Exception:
            logger.exception(
                "room %s: dropping %s's lost %s connection failed",
                self.meeting_id,
                participant_id,
                what,
            )

    def _evaluate(self) -> None:
        """Re-compute every ready subscriber's slot map and tell them what changed."""
        self._last_evaluation = time.monotonic()
        self._slot_map.evaluate(
            self._publishers,
            self._subscribers.values(),
            self._detector.loudest(len(self._publishers)),
        )

    # --- the timer -----------------------------------------------------------------------

    def _start_timer(self) -> None:
        if self._timer is None and not self._closed:
            self._timer = asyncio.create_task(self._run_timer())

    async def _run_timer(self) -> None:
        while not self._closed:
            await asyncio.sleep(TICK_INTERVAL)
            try:
                await self._tick()
            except Exception:
                logger.exception("room %s: timer tick failed", self.meeting_id)

    async def _tick(self) -> None:
        now = time.monotonic()
        speaker = self._detector.update()
        if speaker != self._speaker:
            self._speaker = speaker
            if speaker is not None:
                self._slot_map.spoke(speaker)
            for subscriber in self._subscribers.values():
                subscriber.messages.send_text(speaker_message(speaker))
            self._evaluate()
        elif now - self._last_evaluation >= EVALUATE_INTERVAL:
            self._evaluate()

        for subscriber in list(self._subscribers.values()):
            for slot in subscriber.slots():
                rewriter = slot.forwarder.rewriter
                ssrc = rewriter.keyframe_request() if rewriter is not None else None
                source = self._sources_by_ssrc.get(ssrc) if ssrc is not None else None
                if source is not None:
                    await request_keyframe(source, SWITCH_KEYFRAME_INTERVAL)

        if self._rate.due(now):
            live = sum(
                slot.forwarder.forwarded
                for subscriber in self._subscribers.values()
                for slot in subscriber.slots()
            )
            self._rate.update(live, now)
