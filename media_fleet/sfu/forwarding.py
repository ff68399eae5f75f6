"""The forwarding hot path: a publisher's packet, handled once, then once per slot it feeds.

Per **incoming** packet (:func:`receive_hook`, installed on each publisher receiver with
:func:`~media_fleet.rtc.seams.install_forwarding_receive_hook`): RTX unwrap, the audio level
for the speaker detector, the VP8 descriptor parsed once, abs-send-time computed once, then
the fan-out over the source's slots, then a flush of the batches those slots' sinks queue
into (:mod:`~media_fleet.sfu.sink`).

Per **slot** (:meth:`SlotForwarder.forward`): gating (the codec negotiated on the slot,
the current or pending source, switches only between frames), the
:class:`~media_fleet.rtp.slot.SlotRewriter`, then the slot's :class:`~media_fleet.sfu.sink.Sink`.

Nothing here awaits, and the per-slot method is one plain function over a slot's own
attributes: everything it needs is a direct attribute of the slot or an argument, bound
once when the slot takes its sink (docs/performance.md has what each piece costs).
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Literal

from aiortc import RTCRtpReceiver
from aiortc import clock as aiortc_clock
from aiortc.rtp import RtpPacket, unwrap_rtx

from media_fleet.rtc import seams
from media_fleet.rtp.seqnum import seq_newer
from media_fleet.rtp.slot import SlotRewriter, VideoCodec
from media_fleet.rtp.vp8 import Vp8Descriptor, parse_descriptor

from .sdp import Label
from .sink import PacketRefused, SendBatch, Sink, SinkFeedback

SendToSink = Callable[[int, bool, int, int, bytes, int, tuple[bool, int] | None], bool]
"A sink's bound :meth:`~media_fleet.sfu.sink.Sink.send`."


def _no_sink(*packet: object) -> bool:
    return False  # never called: a slot without a sink has no rewriter either


@dataclass(eq=False)
class Source:
    """One track of one publisher, and the slots it feeds."""

    participant_id: str
    label: Label
    receiver: RTCRtpReceiver
    payload_type: int
    rtx_payload_type: int | None
    discarded: seams.DiscardedFrames
    mime_type: str = "video/vp8"
    "The negotiated codec the publisher sends, lower case: video/vp8, video/h264, audio/opus."
    ssrc: int | None = None
    slots: "set[SlotForwarder]" = field(default_factory=set)
    "The slots offered this source's packets, including those where it is the pending source."
    batches: set[SendBatch] = field(default_factory=set)
    "Every batch the sinks of those slots queue into (flushed after each packet's fan-out)."
    last_keyframe_request: float = -math.inf
    # Plain attributes, not properties: the slot loop reads codec once per slot-packet.
    codec: VideoCodec = field(init=False)
    has_vp8_descriptor: bool = field(init=False)

    def __post_init__(self) -> None:
        self.codec = "h264" if self.mime_type == "video/h264" else "vp8"
        self.has_vp8_descriptor = self.mime_type == "video/vp8" and self.label != "audio"


class SlotForwarder:
    """The stream one slot sends: which source feeds it, its rewriter, and its sink.

    A slot has no rewriter and no sink until it takes one (:meth:`attach`, after a peer
    connection's answer); until then it forwards nothing and selects nothing.

    :param kind: ``"video"`` (switches on keyframes, between frames) or ``"audio"``.
    :param sources_by_ssrc: the room's live sources (a switch away from a source that left
        need not wait for the end of its frame).
    :param record: the worker's :meth:`~media_fleet.sfu.statistics.ForwardingStats.record`.
    """

    __slots__ = (
        "_record",
        "_send",
        "_sources_by_ssrc",
        "forwarded",
        "frame_open",
        "is_video",
        "last_sequence",
        "payload_types",
        "rewriter",
        "sink",
        "source",
    )

    def __init__(
        self,
        kind: Literal["audio", "video"],
        sources_by_ssrc: Mapping[int, Source],
        record: Callable[[int], None],
    ) -> None:
        self.is_video = kind == "video"
        self.rewriter: SlotRewriter | None = None
        self.sink: Sink | None = None
        self.payload_types: dict[str, int] = {}
        "The sink's payload type of each codec it takes (lower-case MIME type)."
        self.source: Source | None = None
        "The source the slot is meant to carry (the rewriter may still wait for its keyframe)."
        self.frame_open = False
        "Video: the newest packet forwarded had no marker bit, so a frame is in progress."
        self.last_sequence: int | None = None
        "Video: the newest outgoing sequence number (late and RTX-repaired packets are older)."
        self.forwarded = 0
        "Packets this slot sent (the room sums them into its rate)."
        self._sources_by_ssrc = sources_by_ssrc
        self._record = record
        self._send: SendToSink = _no_sink

    def attach(self, sink: Sink, feedback: SinkFeedback) -> None:
        """Take ``sink`` for the slot's packets; ``feedback`` is what its receiver may ask."""
        payload_types = dict(sink.payload_types)
        self.rewriter = SlotRewriter(
            sink.ssrc,
            next(iter(payload_types.values()), 0),
            "video" if self.is_video else "audio",
            sink.clock_rate,
        )
        self.payload_types = payload_types
        self.sink = sink
        self._send = sink.send  # bound once: the slot loop makes one call per packet
        sink.attach(feedback)
        self.reselect()

    def detach(self) -> None:
        """Let go of the sink: the slot carries nothing any more (see :meth:`select`)."""
        self.select(None)
        if self.sink is not None:
            self.sink.detach()

    def select(self, source: Source | None) -> None:
        """Point the slot at ``source`` (None: empty it). A video slot keeps its current
        source until the new one's keyframe; a slot left behind drops out of the old
        source's set on that source's next packet."""
        if source is self.source:
            return
        self.source = source
        if source is None:
            if self.rewriter is not None:
                self.rewriter.select(None)
        else:
            self.reselect()

    def reselect(self) -> None:
        """Tell the rewriter the chosen source's SSRC, once both are known."""
        source, rewriter, sink = self.source, self.rewriter, self.sink
        if source is None or source.ssrc is None or rewriter is None or sink is None:
            return
        rewriter.select(source.ssrc)
        source.slots.add(self)
        if sink.batch is not None:
            source.batches.add(sink.batch)

    def forward(
        self,
        source: Source,
        packet: RtpPacket,
        abs_send_time: int,
        arrived_ns: int,
        descriptor: Vp8Descriptor | None,
    ) -> None:
        """Rewrite one packet for this slot and hand it to the sink, synchronously."""
        rewriter = self.rewriter
        ssrc = packet.ssrc
        if rewriter is None:
            return
        payload_type = self.payload_types.get(source.mime_type)
        if payload_type is None:
            return  # the sink does not take this source's codec
        if rewriter.source != ssrc:
            if rewriter.pending_source != ssrc:
                source.slots.discard(self)  # switched away (or emptied): stop offering packets
                return
            if self.frame_open and rewriter.source in self._sources_by_ssrc:
                # switch only between frames: a frame cut short of its marker reaches the
                # decoder broken. The keyframe is lost; the slot asks again. (A source that
                # left will never end its frame: then switch anyway.)
                return
        rewritten = rewriter.rewrite(
            ssrc, packet.sequence_number, packet.timestamp, packet.payload, source.codec, descriptor
        )
        if rewritten is None:
            return
        sequence_number, timestamp, payload = rewritten
        if self.is_video and (
            self.last_sequence is None or seq_newer(sequence_number, self.last_sequence)
        ):
            self.last_sequence = sequence_number
            self.frame_open = not packet.marker
        try:
            sent = self._send(
                payload_type,
                bool(packet.marker),
                sequence_number,
                timestamp,
                payload,
                abs_send_time,
                packet.extensions.audio_level,
            )
        except PacketRefused:
            return
        if not sent:
            if self.is_video:
                # whatever was lost, start again from a keyframe of the same source
                rewriter.select(None)
                rewriter.select(ssrc)
                self.frame_open = False
            return
        self.forwarded += 1
        self._record(arrived_ns)


def receive_hook(
    source: Source,
    learn_ssrc: Callable[[Source, int], None],
    add_level: Callable[[str, int], None],
) -> seams.PacketHandler:
    """The per-packet handler of a publisher's receiver: prepare once, forward to every slot.

    :param learn_ssrc: called when the source's SSRC first shows (or changes).
    :param add_level: the speaker detector's input (participant, RFC 6464 level).
    """
    is_audio = source.label == "audio"
    participant_id = source.participant_id
    forward = SlotForwarder.forward
    ntp_time = aiortc_clock.current_ntp_time

    async def on_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        arrived_ns = perf_counter_ns()  # for ForwardingStats' added-latency figure
        if packet.payload_type != source.payload_type:
            if (
                packet.payload_type != source.rtx_payload_type
                or source.ssrc is None
                or len(packet.payload) < 2
            ):
                return  # RTX padding (probing) or unknown: nothing to forward
            packet = unwrap_rtx(packet, source.payload_type, source.ssrc)
        elif source.ssrc != packet.ssrc:
            learn_ssrc(source, packet.ssrc)
        if is_audio:
            level = packet.extensions.audio_level
            if level is not None:
                add_level(participant_id, level[1])
        slots = source.slots
        if not slots:
            return
        descriptor = None
        if source.has_vp8_descriptor and packet.payload:
            try:  # once per packet, not once per slot
                descriptor = parse_descriptor(packet.payload)
            except ValueError:
                return  # truncated: no slot could take it
        abs_send_time = (ntp_time() >> 14) & 0xFFFFFF
        for slot in tuple(slots):
            forward(slot, source, packet, abs_send_time, arrived_ns, descriptor)
        batches = source.batches
        if batches:
            for batch in batches:  # a flush never changes the set: no copy
                batch.flush()

    return on_packet
