"""One meeting's forwarding room: publish connections in, slot connections out, no codecs.

Every participant has up to two peer connections with the room:

- a **publish** connection (the participant's offer): audio, camera, an optional
  scaled-down camera clone and an optional screen share, labelled by m-line position
  (:mod:`media_fleet.sfu.sdp`). Each receiver is hooked with
  :func:`~media_fleet.rtc.seams.install_forwarding_receive_hook` and never decodes
  (:func:`~media_fleet.rtc.seams.discard_encoded_frames`);
- a **subscribe** connection (the room's offer, negotiated once): ``video_slots`` camera
  slots, one screen slot and ``audio_slots`` audio slots, all send-only transceivers with
  :class:`~media_fleet.rtc.seams.PlaceholderTrack`, plus the data channel ``"townhall"``.

Each slot is a :class:`~media_fleet.rtp.slot.SlotRewriter` with its own
:class:`~media_fleet.rtp.history.PacketHistory`. A publisher's packet is rewritten for every
slot its source feeds, written by the slot's :class:`~media_fleet.rtp.header.SlotHeader`
(the slot transport's extension ids) and sent with
:class:`~media_fleet.rtc.seams.SlotTransmitter`, synchronously (``docs/sfu-hot-path.md``). A timer re-evaluates the slot map (last-N active
speakers, :mod:`media_fleet.sfu.assignment`), sends keyframe requests for pending switches
and measures the packet rate. ``docs/sfu.md`` has the conventions and the data-channel
messages.
"""

import asyncio
import contextlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc import clock as aiortc_clock
from aiortc import sdp as aiortc_sdp
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtpPacket,
    unwrap_rtx,
)

from media_fleet.rtc import seams
from media_fleet.rtp.header import SlotHeader, extension_ids
from media_fleet.rtp.history import PacketHistory
from media_fleet.rtp.sender_report import SenderStatistics
from media_fleet.rtp.seqnum import seq_newer
from media_fleet.rtp.slot import SlotRewriter, VideoCodec
from media_fleet.rtp.speaker import SpeakerDetector
from media_fleet.rtp.vp8 import Vp8Descriptor, parse_descriptor

from .assignment import assign_cameras, assign_stable
from .reports import install_sender_reports
from .sdp import Label, OfferedTrack, announce_host, inspect_offer

logger = logging.getLogger(__name__)

DATA_CHANNEL_LABEL = "townhall"
TICK_INTERVAL = 0.1
"Seconds between timer ticks: speaker update and keyframe requests for pending switches."
EVALUATE_INTERVAL = 0.25
"Seconds between slot-map re-evaluations (also done at once when participants change)."
SWITCH_KEYFRAME_INTERVAL = 0.25
"Minimum seconds between two PLIs to one source driven by slot switches."
FEEDBACK_KEYFRAME_INTERVAL = 0.5
"Minimum seconds between two PLIs to one source forwarded from subscribers' PLI/FIR."
MAX_NACKS_PER_PACKET = 64
"At most this many retransmissions answer one NACK packet."
RATE_WINDOW = 1.0
"Seconds over which packets_per_second is measured."


class ForwardingStats:
    """Process-wide forwarding figures for the node's health (one worker is one process).

    Measurement only: ``record`` runs once per forwarded slot-packet and costs a clock read
    and a list increment. The added latency of a slot-packet is the time from the packet's
    arrival in the room's receive hook to the return of its send for that slot
    (so later slots of one packet include the earlier slots' work). It is kept in a
    cumulative log-linear histogram: 8 buckets per octave of nanoseconds, so a bucket is
    at most 12.5 % wide (see :func:`latency_bucket_bounds_ns`).
    """

    BUCKETS = 256

    def __init__(self) -> None:
        self.forwarded = 0
        "Slot-packets sent since the process started (never reset)."
        self.histogram = [0] * self.BUCKETS
        "Cumulative count per latency bucket (never reset)."
        self._base = [0] * self.BUCKETS

    def record(self, arrived_ns: int) -> None:
        n = time.perf_counter_ns() - arrived_ns
        self.forwarded += 1
        if n < 16:
            index = max(n, 0)
        else:
            bits = n.bit_length()
            index = min(((bits - 3) << 3) | ((n >> (bits - 4)) & 7), self.BUCKETS - 1)
        self.histogram[index] += 1

    def latency_since_last_read(self) -> dict[str, float]:
        """p50, p99, max (µs, bucket midpoints) and count since the previous call."""
        counts = [now - base for now, base in zip(self.histogram, self._base, strict=True)]
        self._base = list(self.histogram)
        return latency_summary(counts)


def latency_bucket_bounds_ns(index: int) -> tuple[int, int]:
    """The [low, high) nanoseconds of a ForwardingStats histogram bucket."""
    if index < 16:
        return index, index + 1
    shift, mantissa = (index >> 3) - 1, (index & 7) | 8
    return mantissa << shift, (mantissa + 1) << shift


def latency_summary(counts: list[int]) -> dict[str, float]:
    """p50, p99, max (µs, bucket midpoints) and count of a ForwardingStats histogram."""
    total = sum(counts)
    summary: dict[str, float] = {"p50": 0.0, "p99": 0.0, "max": 0.0, "count": total}
    if total == 0:
        return summary
    wanted = {"p50": 0.5 * total, "p99": 0.99 * total}
    seen = 0
    for index, count in enumerate(counts):
        if not count:
            continue
        seen += count
        low, high = latency_bucket_bounds_ns(index)
        middle = (low + high) / 2000
        for name, rank in list(wanted.items()):
            if seen >= rank:
                summary[name] = middle
                del wanted[name]
        summary["max"] = middle
    return summary


_small_receive_buffer_logged = False
"Whether the host's net.core.rmem_max limit on SO_RCVBUF was already logged."

FORWARDING = ForwardingStats()
"This process's forwarding figures (``/v1/health`` reads them); measurement only."

SlotKind = Literal["camera", "screen", "audio"]
Quality = Literal["full", "low"]


@dataclass(eq=False)
class _Source:
    """One track of one publisher."""

    participant_id: str
    label: Label
    receiver: RTCRtpReceiver
    payload_type: int
    rtx_payload_type: int | None
    discarded: seams.DiscardedFrames
    mime_type: str = "video/vp8"
    "The negotiated codec the publisher sends, lower case: video/vp8, video/h264, audio/opus."
    ssrc: int | None = None
    sinks: set["_Slot"] = field(default_factory=set)
    last_keyframe_request: float = -math.inf

    @property
    def codec(self) -> VideoCodec:
        return "h264" if self.mime_type == "video/h264" else "vp8"

    @property
    def has_vp8_descriptor(self) -> bool:
        return self.mime_type == "video/vp8" and self.label != "audio"


@dataclass(eq=False)
class _Slot:
    """One send-only slot of one subscriber."""

    kind: SlotKind
    index: int
    transceiver: RTCRtpTransceiver
    mid: str | None = None
    rewriter: SlotRewriter | None = None
    history: PacketHistory | None = None
    statistics: SenderStatistics | None = None
    participant_id: str | None = None
    "Who the slot map assigns to the slot."
    quality: Quality | None = None
    source: _Source | None = None
    "The source the slot is meant to carry (the rewriter may still wait for its keyframe)."
    frame_open: bool = False
    "Video: the newest packet forwarded had no marker bit, so a frame is in progress."
    last_sequence: int | None = None
    "Video: the newest outgoing sequence number (late and RTX-repaired packets are older)."
    payload_types: dict[str, int] = field(default_factory=dict)
    "The subscriber-side payload type of each negotiated codec (lower-case MIME type)."
    rtx_payload_types: dict[int, int] = field(default_factory=dict)
    "The subscriber-side RTX payload type for each payload type that has one."
    transmitter: seams.SlotTransmitter | None = None
    "Protects and sends the slot's packets (set with the rewriter)."
    header: SlotHeader | None = None
    "Writes the slot's packets; made on the first packet after the sender started."

    @property
    def sender(self) -> RTCRtpSender:
        return self.transceiver.sender


@dataclass(eq=False)
class _Publisher:
    participant_id: str
    pc: RTCPeerConnection
    sources: dict[Label, _Source] = field(default_factory=dict)
    # One REMB for all the connection's video, not one per stream (see the class).
    bandwidth: seams.ReceiveBandwidthEstimate = field(
        default_factory=seams.ReceiveBandwidthEstimate
    )


@dataclass(eq=False)
class _Subscriber:
    participant_id: str
    pc: RTCPeerConnection
    channel: RTCDataChannel
    cameras: list[_Slot]
    screen: _Slot
    audio: list[_Slot]
    answered: bool = False
    "The answer was accepted and the slots have their rewriters."
    ready: bool = False
    "Answered and connected: the slots take sources (a keyframe sent earlier would be lost)."
    last_slots_message: str | None = None

    def slots(self) -> list[_Slot]:
        return [*self.cameras, self.screen, *self.audio]


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


VIDEO_MIME_TYPES = ("video/vp8", "video/h264")
"Forwarded video codecs, preferred first: a publisher offering both sends VP8."


def _codec_preferences(kind: str) -> list[RTCRtpCodecCapability]:
    """VP8 then H.264 (video) or Opus (audio), plus RTX: forwarding never transcodes.

    On a publish connection the order makes a publisher that offers both send VP8; on a
    subscribe connection every video slot offers both, so any source can feed any slot.
    """
    wanted = VIDEO_MIME_TYPES if kind == "video" else ("audio/opus",)
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    rtx = [c for c in codecs if c.mimeType.lower() == f"{kind}/rtx"]
    return [c for mime in wanted for c in codecs if c.mimeType.lower() == mime] + rtx


def _negotiated_payload_types(
    answer_sdp: str,
) -> dict[str, tuple[dict[str, int], dict[int, int]]]:
    """Per mid of a subscribe answer: payload type per codec, and RTX payload type per type.

    The first payload type of each MIME type wins (H.264 is offered in two profiles; the
    forwarded stream is written with the first, which receivers decode alike).
    """
    description = aiortc_sdp.SessionDescription.parse(answer_sdp)
    negotiated: dict[str, tuple[dict[str, int], dict[int, int]]] = {}
    for media in description.media:
        if media.rtp.muxId is None:
            continue
        by_mime: dict[str, int] = {}
        rtx: dict[int, int] = {}
        for codec in media.rtp.codecs:
            if codec.payloadType is None:
                continue
            mime = codec.mimeType.lower()
            if mime.endswith("/rtx"):
                apt = codec.parameters.get("apt")
                if isinstance(apt, int):
                    rtx[apt] = codec.payloadType
            else:
                by_mime.setdefault(mime, codec.payloadType)
        negotiated[media.rtp.muxId] = (by_mime, rtx)
    return negotiated


class MeetingRoom:
    """The forwarding room of one meeting on this node.

    :param meeting_id: the meeting's id (for logs).
    :param video_slots: camera slots per subscriber (last-N); slot 0 is the speaker slot.
    :param audio_slots: audio slots per subscriber (the loudest others).
    :param announced_host: if set, the address written into every ICE candidate of the SDP
        the room hands out (on EC2 the public address is not on the interface).
    """

    def __init__(
        self,
        meeting_id: str,
        *,
        video_slots: int = 9,
        audio_slots: int = 3,
        announced_host: str | None = None,
    ) -> None:
        if video_slots < 1 or audio_slots < 1:
            raise ValueError("a room needs at least one camera slot and one audio slot")
        self.meeting_id = meeting_id
        self.video_slots = video_slots
        self.audio_slots = audio_slots
        self.announced_host = announced_host
        self._publishers: dict[str, _Publisher] = {}
        self._subscribers: dict[str, _Subscriber] = {}
        self._sources_by_ssrc: dict[int, _Source] = {}
        self._join_order: list[str] = []
        self._recent_speakers: list[str] = []
        self._screen_order: list[str] = []
        self._detector: SpeakerDetector[str] = SpeakerDetector()
        self._speaker: str | None = None
        self._closed = False
        self._timer: asyncio.Task[None] | None = None
        self._lost_tasks: set[asyncio.Task[None]] = set()
        self._last_evaluation = -math.inf
        self._forwarded = 0
        self._rate = 0.0
        self._rate_count = 0
        self._rate_time = time.monotonic()
        self._locks: dict[str, asyncio.Lock] = {}

    # --- public API -------------------------------------------------------------------

    async def publish(self, participant_id: str, offer_sdp: str) -> str:
        """Accept a publisher's offer and return the answer SDP.

        The m-lines are labelled by position (audio; camera, camera-low, screen). Publishing
        again replaces the participant's previous publish connection (e.g. to start a screen
        share). Raises ValueError with the reason when the offer is unusable.
        """
        async with self._lock_for(participant_id):
            return await self._publish(participant_id, offer_sdp)

    async def _publish(self, participant_id: str, offer_sdp: str) -> str:
        self._check_open()
        tracks = inspect_offer(offer_sdp)
        await self._close_publisher(participant_id)
        pc = self._new_peer_connection()
        publisher = _Publisher(participant_id, pc)
        offered: dict[RTCRtpTransceiver, OfferedTrack] = {}
        for track in tracks:
            # created in m-line order, so setRemoteDescription pairs them up in that order
            transceiver = pc.addTransceiver(track.kind, direction="recvonly")
            transceiver.setCodecPreferences(_codec_preferences(track.kind))
            offered[transceiver] = track

        self._forget_when_lost(participant_id, pc, "publish")

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            try:
                self._hook_track(publisher, offered, track)
            except Exception:
                logger.exception("room %s: hooking a track of %s failed", self.meeting_id, track)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as error:
            await pc.close()
            raise ValueError(f"the publish offer was refused: {error}") from error
        if self._closed:  # closed while negotiating
            await pc.close()
            self._check_open()
        self._enlarge_receive_buffers(pc)
        self._publishers[participant_id] = publisher
        self._joined(participant_id)
        if "screen" in publisher.sources:
            self._screen_order.append(participant_id)
        self._evaluate()
        self._start_timer()
        return announce_host(pc.localDescription.sdp, self.announced_host)

    def _enlarge_receive_buffers(self, pc: RTCPeerConnection) -> None:
        """Room for keyframe bursts on the publisher's sockets (see seams)."""
        for transceiver in pc.getTransceivers()[:1]:  # max-bundle: one transport for all
            try:
                granted = seams.enlarge_receive_buffers(transceiver.receiver)
            except OSError:
                logger.exception("room %s: SO_RCVBUF could not be set", self.meeting_id)
                continue
            global _small_receive_buffer_logged
            if 0 < granted < seams.RECEIVE_BUFFER_BYTES and not _small_receive_buffer_logged:
                _small_receive_buffer_logged = True  # once per process: it is the host's limit
                logger.info(
                    "SO_RCVBUF is %d bytes, not %d: raise net.core.rmem_max for the node",
                    granted, seams.RECEIVE_BUFFER_BYTES,
                )  # fmt: skip

    async def subscribe(self, participant_id: str) -> str:
        """Create the participant's subscribe connection and return the room's offer SDP.

        The offer has ``video_slots`` camera slots, then one screen slot, then
        ``audio_slots`` audio slots (send-only, VP8 + H.264 and Opus with RTX), then the data
        channel ``"townhall"``. Subscribing again replaces the previous connection.
        """
        async with self._lock_for(participant_id):
            return await self._subscribe(participant_id)

    async def _subscribe(self, participant_id: str) -> str:
        self._check_open()
        await self._close_subscriber(participant_id)
        pc = self._new_peer_connection()

        def add(kind: SlotKind, index: int) -> _Slot:
            media = "audio" if kind == "audio" else "video"
            transceiver = pc.addTransceiver(seams.PlaceholderTrack(media), direction="sendonly")
            transceiver.setCodecPreferences(_codec_preferences(media))
            return _Slot(kind, index, transceiver)

        cameras = [add("camera", index) for index in range(self.video_slots)]
        screen = add("screen", 0)
        audio = [add("audio", index) for index in range(self.audio_slots)]
        channel = pc.createDataChannel(DATA_CHANNEL_LABEL)
        subscriber = _Subscriber(participant_id, pc, channel, cameras, screen, audio)

        self._forget_when_lost(participant_id, pc, "subscribe")

        @pc.on("connectionstatechange")
        def on_state() -> None:
            try:
                if pc.connectionState == "connected" and subscriber.answered:
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

        try:
            await pc.setLocalDescription(await pc.createOffer())
        except Exception:
            await pc.close()
            raise
        if self._closed:
            await pc.close()
            self._check_open()
        self._subscribers[participant_id] = subscriber
        self._joined(participant_id)
        self._start_timer()
        return announce_host(pc.localDescription.sdp, self.announced_host)

    async def accept_answer(self, participant_id: str, answer_sdp: str) -> None:
        """Apply the participant's answer to the subscribe offer; the slots start then.

        Raises KeyError if the participant has no pending subscribe connection, and
        ValueError if the answer is refused.
        """
        async with self._lock_for(participant_id):
            await self._accept_answer(participant_id, answer_sdp)

    async def _accept_answer(self, participant_id: str, answer_sdp: str) -> None:
        self._check_open()
        subscriber = self._subscribers.get(participant_id)
        if subscriber is None:
            raise KeyError(f"{participant_id} has no subscribe connection")
        if subscriber.answered:
            raise ValueError(f"{participant_id}'s subscribe connection is already negotiated")
        try:
            await subscriber.pc.setRemoteDescription(
                RTCSessionDescription(sdp=answer_sdp, type="answer")
            )
            negotiated = _negotiated_payload_types(answer_sdp)
            for slot in subscriber.slots():
                self._start_slot(slot, negotiated)
        except Exception as error:
            raise ValueError(f"the subscribe answer was refused: {error}") from error
        subscriber.answered = True
        if subscriber.pc.connectionState == "connected":
            subscriber.ready = True
            self._evaluate()

    async def leave(self, participant_id: str) -> None:
        """Close the participant's connections, forget their sources and free their slots."""
        async with self._lock_for(participant_id):
            await self._leave(participant_id)

    async def _leave(self, participant_id: str) -> None:
        await self._close_publisher(participant_id)
        await self._close_subscriber(participant_id)
        with contextlib.suppress(ValueError):
            self._join_order.remove(participant_id)
        self._evaluate()

    async def tell_clients_to_move(self) -> None:
        """Send ``{"type": "move"}`` to every subscriber (the node is draining)."""
        for subscriber in list(self._subscribers.values()):
            self._send(subscriber, {"type": "move"})
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
        self._join_order.clear()

    def sessions(self) -> int:
        """Participants with a publish or a subscribe connection."""
        return len(self._publishers.keys() | self._subscribers.keys())

    def forwarded_streams(self) -> int:
        """Slots currently fed by a source, summed over all subscribers."""
        return sum(
            1
            for subscriber in self._subscribers.values()
            for slot in subscriber.slots()
            if slot.rewriter is not None and slot.rewriter.source is not None
        )

    def packets_per_second(self) -> float:
        """Forwarded packets per second, measured over the last second or so."""
        return self._rate

    # --- diagnostics (also used by the tests) -------------------------------------------

    @property
    def active_speaker(self) -> str | None:
        return self._speaker

    def slot_states(self, participant_id: str) -> list[SlotState]:
        """The participant's subscribe slots: camera slots, the screen slot, audio slots."""
        subscriber = self._subscribers.get(participant_id)
        if subscriber is None:
            return []
        states = []
        for slot in subscriber.slots():
            ssrc = slot.rewriter.source if slot.rewriter is not None else None
            feeding = self._sources_by_ssrc.get(ssrc) if ssrc is not None else None
            states.append(
                SlotState(
                    slot.kind,
                    slot.index,
                    slot.mid,
                    slot.participant_id,
                    slot.quality,
                    feeding.participant_id if feeding is not None else None,
                    feeding.label if feeding is not None else None,
                    ssrc,
                )
            )
        return states

    def rtp_receivers(self) -> list[RTCRtpReceiver]:
        """Every hooked publisher receiver (to prove none of them decodes)."""
        return [s.receiver for p in self._publishers.values() for s in p.sources.values()]

    def rtp_senders(self) -> list[RTCRtpSender]:
        """Every slot sender (to prove none of them encodes)."""
        return [slot.sender for s in self._subscribers.values() for slot in s.slots()]

    def peer_connections(self, participant_id: str | None = None) -> list[RTCPeerConnection]:
        """The room's connections (of one participant, if given): publish, then subscribe."""
        return [
            peer.pc
            for peers in (self._publishers, self._subscribers)
            for pid, peer in peers.items()
            if participant_id is None or pid == participant_id
        ]

    # --- connections ---------------------------------------------------------------------

    def _lock_for(self, participant_id: str) -> asyncio.Lock:
        """One participant's negotiations and leave run one at a time."""
        return self._locks.setdefault(participant_id, asyncio.Lock())

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"room {self.meeting_id} is closed")

    @staticmethod
    def _new_peer_connection() -> RTCPeerConnection:
        # iceServers=[]: never the default public STUN server (gathering stalls on a closed
        # network). max-bundle: with aiortc's default "balanced" policy the third m-line of
        # one kind stays on a transport that bundling stops, and never carries a packet.
        return RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )

    def _joined(self, participant_id: str) -> None:
        if participant_id not in self._join_order:
            self._join_order.append(participant_id)

    def _start_timer(self) -> None:
        if self._timer is None and not self._closed:
            self._timer = asyncio.create_task(self._run_timer())

    def _hook_track(
        self,
        publisher: _Publisher,
        offered: dict[RTCRtpTransceiver, OfferedTrack],
        track: MediaStreamTrack,
    ) -> None:
        transceiver = next(t for t in offered if t.receiver.track is track)
        label = offered[transceiver].label
        parameters = seams.slot_parameters(transceiver)
        receiver = transceiver.receiver
        source = _Source(
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
            receiver, self._receive_hook(source), publisher.bandwidth
        )

    def _forget_when_lost(self, participant_id: str, pc: RTCPeerConnection, what: str) -> None:
        """A client that vanishes (closed its side, or ICE consent ran out) never calls leave:
        its connection's failure frees its sources and slots, so drain and load stay true."""

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState not in ("failed", "closed") or self._closed:
                return
            task = asyncio.ensure_future(self._drop_lost(participant_id, pc, what))
            self._lost_tasks.add(task)
            task.add_done_callback(self._lost_tasks.discard)

    async def _drop_lost(self, participant_id: str, pc: RTCPeerConnection, what: str) -> None:
        try:
            async with self._lock_for(participant_id):
                if what == "publish":
                    current = self._publishers.get(participant_id)
                    if current is not None and current.pc is pc:
                        await self._close_publisher(participant_id)
                else:
                    subscriber = self._subscribers.get(participant_id)
                    if subscriber is not None and subscriber.pc is pc:
                        await self._close_subscriber(participant_id)
                if (
                    participant_id not in self._publishers
                    and participant_id not in self._subscribers
                ):
                    with contextlib.suppress(ValueError):
                        self._join_order.remove(participant_id)
                self._evaluate()
        except Exception:
            logger.exception(
                "room %s: dropping %s's lost %s connection failed",
                self.meeting_id,
                participant_id,
                what,
            )

    async def _close_publisher(self, participant_id: str) -> None:
        publisher = self._publishers.pop(participant_id, None)
        if publisher is None:
            return
        for source in publisher.sources.values():
            if source.ssrc is not None and self._sources_by_ssrc.get(source.ssrc) is source:
                del self._sources_by_ssrc[source.ssrc]
            source.sinks.clear()
        self._detector.remove(participant_id)
        if participant_id in self._recent_speakers:
            self._recent_speakers.remove(participant_id)
        if participant_id in self._screen_order:
            self._screen_order.remove(participant_id)
        self._evaluate()
        await self._close_pc(publisher.pc, participant_id, "publish")

    async def _close_subscriber(self, participant_id: str) -> None:
        subscriber = self._subscribers.pop(participant_id, None)
        if subscriber is None:
            return
        for slot in subscriber.slots():
            self._assign(slot, None, None)
        await self._close_pc(subscriber.pc, participant_id, "subscribe")

    async def _close_pc(self, pc: RTCPeerConnection, participant_id: str, what: str) -> None:
        try:
            await asyncio.wait_for(pc.close(), 10)
        except Exception:
            logger.exception(
                "room %s: closing %s's %s connection failed", self.meeting_id, participant_id, what
            )

    def _start_slot(
        self, slot: _Slot, negotiated: dict[str, tuple[dict[str, int], dict[int, int]]]
    ) -> None:
        parameters = seams.slot_parameters(slot.transceiver)
        slot.mid = parameters.mid
        slot.payload_types, slot.rtx_payload_types = negotiated.get(parameters.mid or "", ({}, {}))
        slot.payload_types.setdefault(parameters.mime_type.lower(), parameters.payload_type)
        if parameters.rtx_payload_type is not None:
            slot.rtx_payload_types.setdefault(parameters.payload_type, parameters.rtx_payload_type)
        slot.rewriter = SlotRewriter(
            parameters.ssrc,
            parameters.payload_type,
            "audio" if slot.kind == "audio" else "video",
            parameters.clock_rate,
        )
        if parameters.rtx_payload_type is not None:
            slot.history = PacketHistory(parameters.rtx_payload_type, parameters.rtx_ssrc)
        slot.transmitter = seams.SlotTransmitter(slot.sender)
        slot.header = None
        seams.install_feedback_hook(slot.sender, self._feedback_hook(slot))
        slot.statistics = SenderStatistics(parameters.ssrc, parameters.clock_rate)
        install_sender_reports(slot.sender, slot.statistics)

    # --- forwarding ----------------------------------------------------------------------

    def _receive_hook(self, source: _Source) -> seams.PacketHandler:
        is_audio = source.label == "audio"

        async def on_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
            arrived_ns = time.perf_counter_ns()  # for FORWARDING's added-latency figure
            if packet.payload_type != source.payload_type:
                if (
                    packet.payload_type != source.rtx_payload_type
                    or source.ssrc is None
                    or len(packet.payload) < 2
                ):
                    return  # RTX padding (probing) or unknown: nothing to forward
                packet = unwrap_rtx(packet, source.payload_type, source.ssrc)
            elif source.ssrc != packet.ssrc:
                self._learn_ssrc(source, packet.ssrc)
            if is_audio:
                level = packet.extensions.audio_level
                if level is not None:
                    self._detector.add_level(source.participant_id, level[1])
            if not source.sinks:
                return
            descriptor = None
            if source.has_vp8_descriptor and packet.payload:
                try:  # once per packet, not once per slot
                    descriptor = parse_descriptor(packet.payload)
                except ValueError:
                    return  # truncated: no slot could take it
            abs_send_time = (aiortc_clock.current_ntp_time() >> 14) & 0xFFFFFF
            forward = self._forward
            for slot in tuple(source.sinks):
                forward(slot, source, packet, abs_send_time, arrived_ns, descriptor)

        return on_packet

    def _learn_ssrc(self, source: _Source, ssrc: int) -> None:
        if source.ssrc is not None and self._sources_by_ssrc.get(source.ssrc) is source:
            del self._sources_by_ssrc[source.ssrc]
        source.ssrc = ssrc
        self._sources_by_ssrc[ssrc] = source
        for subscriber in self._subscribers.values():  # slots waiting for this source
            for slot in subscriber.slots():
                if slot.source is source:
                    self._select(slot)

    def _forward(
        self,
        slot: _Slot,
        source: _Source,
        packet: RtpPacket,
        abs_send_time: int,
        arrived_ns: int | None = None,
        descriptor: Vp8Descriptor | None = None,
    ) -> None:
        """Rewrite one packet for one slot and send it, synchronously (nothing here waits)."""
        rewriter = slot.rewriter
        ssrc = packet.ssrc
        if rewriter is None:
            return
        payload_type = slot.payload_types.get(source.mime_type)
        if payload_type is None:
            return  # the subscriber did not negotiate this source's codec on the slot
        if rewriter.source != ssrc:
            if rewriter.pending_source != ssrc:
                source.sinks.discard(slot)  # switched away (or emptied): stop offering packets
                return
            if slot.frame_open and rewriter.source in self._sources_by_ssrc:
                # switch only between frames: a frame cut short of its marker reaches the
                # subscriber's decoder broken. The keyframe is lost; the slot asks again.
                # (A source that left will never end its frame: then switch anyway.)
                return
        rewritten = rewriter.rewrite(
            ssrc, packet.sequence_number, packet.timestamp, packet.payload, source.codec, descriptor
        )
        if rewritten is None:
            return
        if slot.kind != "audio" and (
            slot.last_sequence is None or seq_newer(rewritten.sequence_number, slot.last_sequence)
        ):
            slot.last_sequence = rewritten.sequence_number
            slot.frame_open = not packet.marker
        header = slot.header or self._slot_header(slot)
        transmitter = slot.transmitter
        if header is None or transmitter is None:
            self._not_sent(slot, rewriter, ssrc)
            return
        data = header.write(
            payload_type,
            bool(packet.marker),
            rewritten.sequence_number,
            rewritten.timestamp,
            rewritten.payload,
            abs_send_time,
            packet.extensions.audio_level,
        )
        try:
            sent = transmitter.send(data)
        except seams.SrtpError:
            return  # SRTP refused an index far behind the newest sent (a late duplicate)
        if not sent:
            self._not_sent(slot, rewriter, ssrc)
            return
        if slot.history is not None:
            slot.history.add(rewritten.sequence_number, data)
        if slot.statistics is not None:
            slot.statistics.on_sent(rewritten.timestamp, len(rewritten.payload))
        self._forwarded += 1
        if arrived_ns is not None:
            FORWARDING.record(arrived_ns)

    @staticmethod
    def _not_sent(slot: _Slot, rewriter: SlotRewriter, ssrc: int) -> None:
        """The slot's transport is not connected (yet, or any more)."""
        if slot.kind != "audio":
            # whatever was lost, start again from a keyframe
            rewriter.select(None)
            rewriter.select(ssrc)
            slot.frame_open = False

    def _slot_header(self, slot: _Slot) -> SlotHeader | None:
        """The slot's header writer, once its sender has started (None before)."""
        sender = slot.sender
        if slot.rewriter is None or not seams.sender_started(sender):
            return None
        extensions_map = seams.header_extensions_map(sender)
        slot.header = SlotHeader(
            slot.rewriter.ssrc, slot.mid, extensions_map, extension_ids(extensions_map)
        )
        return slot.header

    def _feedback_hook(self, slot: _Slot) -> seams.FeedbackHandler:
        async def on_rtcp(packet: AnyRtcpPacket) -> None:
            if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
                history = slot.history
                if history is None:
                    return
                for sequence_number in packet.lost[:MAX_NACKS_PER_PACKET]:
                    sent = history.get(sequence_number)
                    if sent is None:
                        continue
                    # the RTX payload type that goes with the codec the packet was sent in
                    rtx_payload_type = slot.rtx_payload_types.get(sent[1] & 0x7F)
                    if rtx_payload_type is None:
                        continue
                    history.rtx_payload_type = rtx_payload_type
                    rtx = history.rtx_for(sequence_number)
                    if rtx is not None:
                        await seams.send_packet(slot.sender, rtx)
            elif isinstance(packet, RtcpPsfbPacket) and packet.fmt in (
                RTCP_PSFB_PLI,
                RTCP_PSFB_FIR,
            ):
                rewriter = slot.rewriter
                ssrc = rewriter.source if rewriter is not None else None
                source = self._sources_by_ssrc.get(ssrc) if ssrc is not None else None
                if source is not None:
                    await self._request_keyframe(source, FEEDBACK_KEYFRAME_INTERVAL)

        return on_rtcp

    async def _request_keyframe(self, source: _Source, min_interval: float) -> None:
        now = time.monotonic()
        if source.ssrc is None or now - source.last_keyframe_request < min_interval:
            return
        source.last_keyframe_request = now
        await seams.request_keyframe(source.receiver, source.ssrc)

    # --- the slot map --------------------------------------------------------------------

    def _source(self, participant_id: str | None, label: Label) -> _Source | None:
        publisher = self._publishers.get(participant_id) if participant_id else None
        return publisher.sources.get(label) if publisher is not None else None

    def _assign(self, slot: _Slot, participant_id: str | None, quality: Quality | None) -> None:
        """Point the slot at a participant's source (or at nothing)."""
        label: Label = "audio" if slot.kind == "audio" else "screen"
        if slot.kind == "camera":
            label = "camera-low" if quality == "low" else "camera"
        source = self._source(participant_id, label)
        slot.participant_id = participant_id if source is not None else None
        slot.quality = quality if source is not None and slot.kind == "camera" else None
        if source is slot.source:
            return
        slot.source = source
        if source is None:
            if slot.rewriter is not None:
                slot.rewriter.select(None)
        else:
            self._select(slot)

    def _select(self, slot: _Slot) -> None:
        source, rewriter = slot.source, slot.rewriter
        if source is None or source.ssrc is None or rewriter is None:
            return
        rewriter.select(source.ssrc)
        source.sinks.add(slot)

    def _evaluate(self) -> None:
        """Re-compute every ready subscriber's slot map and tell them what changed."""
        self._last_evaluation = time.monotonic()
        cameras = {pid for pid, p in self._publishers.items() if "camera" in p.sources}
        speakers = {pid for pid, p in self._publishers.items() if "audio" in p.sources}
        loudest = [pid for pid in self._detector.loudest(len(self._publishers)) if pid in speakers]
        for subscriber in self._subscribers.values():
            if not subscriber.ready:
                continue
            me = subscriber.participant_id
            occupants = assign_cameras(
                [slot.participant_id for slot in subscriber.cameras],
                me,
                self._recent_speakers,
                self._join_order,
                cameras,
            )
            for position, (slot, pid) in enumerate(zip(subscriber.cameras, occupants, strict=True)):
                quality: Quality = "full"
                if position > 0 and self._source(pid, "camera-low") is not None:
                    quality = "low"
                self._assign(slot, pid, quality if pid is not None else None)
            sharer = next((p for p in reversed(self._screen_order) if p != me), None)
            self._assign(subscriber.screen, sharer, None)
            others = [pid for pid in loudest if pid != me][: self.audio_slots]
            heard = assign_stable([slot.participant_id for slot in subscriber.audio], others)
            for slot, pid in zip(subscriber.audio, heard, strict=True):
                self._assign(slot, pid, None)
            self._send_slots(subscriber)

    def _slots_message(self, subscriber: _Subscriber) -> dict[str, Any]:
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
                if screen.participant_id is not None
                else None
            ),
            "audio": [
                {"slot": slot.index, "mid": slot.mid, "participant_id": slot.participant_id}
                for slot in subscriber.audio
            ],
        }

    def _send_slots(self, subscriber: _Subscriber) -> None:
        message = json.dumps(self._slots_message(subscriber))
        if message != subscriber.last_slots_message and self._send_text(subscriber, message):
            subscriber.last_slots_message = message

    def _send_state(self, subscriber: _Subscriber) -> None:
        """On the channel's open: the current slot map and active speaker."""
        subscriber.last_slots_message = None
        if subscriber.ready:
            self._send_slots(subscriber)
        self._send(subscriber, {"type": "speaker", "participant_id": self._speaker})

    def _send(self, subscriber: _Subscriber, message: dict[str, Any]) -> bool:
        return self._send_text(subscriber, json.dumps(message))

    def _send_text(self, subscriber: _Subscriber, text: str) -> bool:
        if subscriber.channel.readyState != "open":
            return False
        try:
            subscriber.channel.send(text)
        except Exception:
            logger.exception("room %s: data channel send failed", self.meeting_id)
            return False
        return True

    # --- the timer -----------------------------------------------------------------------

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
                if speaker in self._recent_speakers:
                    self._recent_speakers.remove(speaker)
                self._recent_speakers.insert(0, speaker)
            for subscriber in self._subscribers.values():
                self._send(subscriber, {"type": "speaker", "participant_id": speaker})
            self._evaluate()
        elif now - self._last_evaluation >= EVALUATE_INTERVAL:
            self._evaluate()

        for subscriber in list(self._subscribers.values()):
            for slot in subscriber.slots():
                ssrc = slot.rewriter.keyframe_request() if slot.rewriter is not None else None
                source = self._sources_by_ssrc.get(ssrc) if ssrc is not None else None
                if source is not None:
                    await self._request_keyframe(source, SWITCH_KEYFRAME_INTERVAL)

        if now - self._rate_time >= RATE_WINDOW:
            self._rate = (self._forwarded - self._rate_count) / (now - self._rate_time)
            self._rate_count = self._forwarded
            self._rate_time = now
