"""A real aiortc loopback: publishers -> forwarding node -> subscriber, no codec on the node.

Two publishers send VP8 (encoded by aiortc on the publisher side, which is allowed) to a node
that hooks its receivers through media_fleet.rtc.seams, rewrites every packet with a
SlotRewriter onto one fixed send-only slot of a subscriber connection, and sends it with the
slot transport's ``_send_rtp``. The subscriber decodes. The slot switches from publisher A to
publisher B on B's keyframe after a PLI.

Every peer connection uses ``iceServers=[]`` and only 127.0.0.1 host candidates.
"""

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc import clock as aiortc_clock
from aiortc.rtp import RtpPacket, unwrap_rtx
from av import VideoFrame

from media_fleet.rtc import seams
from media_fleet.rtp.history import PacketHistory
from media_fleet.rtp.sender_report import SenderStatistics
from media_fleet.rtp.slot import SlotRewriter
from media_fleet.rtp.vp8 import parse_descriptor
from tests.media.synthetic_media import FlatVideoTrack

LUMA_A = 40
LUMA_B = 210
WAIT = 10.0


@dataclass
class Forwarded:
    source: int
    sequence_number: int
    timestamp: int
    keyframe: bool


@dataclass
class Node:
    """The forwarding side under test: one video slot on one subscriber connection."""

    slot: SlotRewriter | None = None
    sender: RTCRtpSender | None = None
    history: PacketHistory | None = None
    stats: SenderStatistics | None = None
    mid: str | None = None
    receivers: dict[int, RTCRtpReceiver] = field(default_factory=dict)
    hooked: list[RTCRtpReceiver] = field(default_factory=list)
    discarded: list[seams.DiscardedFrames] = field(default_factory=list)
    forwarded: list[Forwarded] = field(default_factory=list)
    keyframe_requests: list[int] = field(default_factory=list)

    def hook(self, pc: RTCPeerConnection) -> None:
        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            for transceiver in pc.getTransceivers():
                if transceiver.receiver.track is track:
                    receiver = transceiver.receiver
                    media_type = seams.slot_parameters(transceiver).payload_type
                    self.hooked.append(receiver)
                    self.discarded.append(seams.discard_encoded_frames(receiver))
                    seams.install_receive_hook(receiver, self._on_packet_from(receiver, media_type))

    def _on_packet_from(self, receiver: RTCRtpReceiver, media_type: int) -> seams.PacketHandler:
        async def on_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
            if packet.payload_type != media_type:  # RTX: not forwarded in this test
                return
            self.receivers.setdefault(packet.ssrc, receiver)
            await self.forward(packet)

        return on_packet

    async def forward(self, packet: RtpPacket) -> None:
        slot, sender = self.slot, self.sender
        if slot is None or sender is None or self.history is None or self.stats is None:
            return
        rewritten = slot.rewrite(
            packet.ssrc, packet.sequence_number, packet.timestamp, packet.payload
        )
        if rewritten is None:
            return
        out = RtpPacket(
            payload_type=slot.payload_type,
            marker=packet.marker,
            sequence_number=rewritten.sequence_number,
            timestamp=rewritten.timestamp,
            ssrc=slot.ssrc,
            payload=rewritten.payload,
        )
        out.extensions.abs_send_time = (aiortc_clock.current_ntp_time() >> 14) & 0xFFFFFF
        out.extensions.mid = self.mid
        data = seams.serialize_for(sender, out)
        if await seams.send_packet(sender, data):
            self.history.add(rewritten.sequence_number, data)
            self.stats.on_sent(rewritten.timestamp, len(rewritten.payload))
            self.forwarded.append(
                Forwarded(
                    packet.ssrc,
                    rewritten.sequence_number,
                    rewritten.timestamp,
                    parse_descriptor(packet.payload).keyframe,
                )
            )

    async def request_keyframes(self) -> None:
        while True:
            await asyncio.sleep(0.02)
            if self.slot is None:
                continue
            ssrc = self.slot.keyframe_request()
            if ssrc is not None and ssrc in self.receivers:
                self.keyframe_requests.append(ssrc)
                await seams.request_keyframe(self.receivers[ssrc], ssrc)


def peer() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def connect(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    await offerer.setLocalDescription(await offerer.createOffer())
    offer = offerer.localDescription
    await answerer.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type=offer.type))
    await answerer.setLocalDescription(await answerer.createAnswer())
    answer = answerer.localDescription
    await offerer.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type=answer.type))


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    async def poll() -> None:
        while not condition():  # noqa: ASYNC110 (the conditions are plain state, no events)
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
async def peers(loopback_only: None) -> AsyncIterator[list[RTCPeerConnection]]:
    created: list[RTCPeerConnection] = []
    try:
        yield created
    finally:
        for pc in created:
            await asyncio.wait_for(pc.close(), 5)


async def test_forwarding_node_switches_a_slot_without_decoding(
    peers: list[RTCPeerConnection], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    node = Node()
    with seams.watch_codecs() as codecs:
        # publishers A and B, each on its own publish connection to the node
        publish: dict[int, RTCPeerConnection] = {}
        for luma in (LUMA_A, LUMA_B):
            publisher, node_in = peer(), peer()
            peers += [publisher, node_in]
            publisher.addTrack(FlatVideoTrack(luma))
            node.hook(node_in)
            await connect(publisher, node_in)
            publish[luma] = node_in

        # the subscriber's connection: one send-only video slot with a placeholder track
        node_out, subscriber = peer(), peer()
        peers += [node_out, subscriber]
        slot_transceiver = node_out.addTransceiver(
            seams.PlaceholderTrack("video"), direction="sendonly"
        )
        frames: list[tuple[int, int]] = []
        readers: list[asyncio.Task[None]] = []

        @subscriber.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            async def read() -> None:
                while True:
                    frame = await track.recv()
                    assert isinstance(frame, VideoFrame)
                    plane = frame.planes[0]
                    luma = bytes(plane)[plane.line_size * 60 + 80]  # the centre pixel
                    frames.append((int(frame.pts or 0), luma))

            readers.append(asyncio.ensure_future(read()))
            # watch what reaches the subscriber's receiver (a test-side tap, not the node)
            for transceiver in subscriber.getTransceivers():
                if transceiver.receiver.track is track:
                    seams.install_receive_hook(transceiver.receiver, tap)

        received: list[RtpPacket] = []

        async def tap(packet: RtpPacket, arrival_time_ms: int) -> None:
            received.append(packet)

        await connect(node_out, subscriber)
        await wait_until(lambda: node_out.connectionState == "connected", "the slot connection")

        parameters = seams.slot_parameters(slot_transceiver)
        assert parameters.mime_type == "video/VP8" and parameters.clock_rate == 90000
        assert parameters.rtx_payload_type is not None
        node.sender = slot_transceiver.sender
        node.mid = parameters.mid
        node.history = PacketHistory(parameters.rtx_payload_type, parameters.rtx_ssrc)
        node.stats = SenderStatistics(parameters.ssrc, parameters.clock_rate)
        node.slot = SlotRewriter(
            parameters.ssrc, parameters.payload_type, "video", parameters.clock_rate
        )
        pli_task = asyncio.ensure_future(node.request_keyframes())
        try:
            await wait_until(lambda: len(node.receivers) == 2, "packets from both publishers")
            ssrc = {
                luma: next(s for s, r in node.receivers.items() if r in pc.getReceivers())
                for luma, pc in publish.items()
            }

            # the slot starts on A: after A's keyframe the subscriber decodes A's frames
            node.slot.select(ssrc[LUMA_A])
            await wait_until(lambda: len(frames) >= 10, "10 decoded frames from A")
            assert all(abs(luma - LUMA_A) < 20 for _, luma in frames)
            assert node.keyframe_requests[0] == ssrc[LUMA_A]

            # switch to B: a PLI goes to B, A feeds the slot until B's keyframe
            decoded_before = len(frames)
            node.slot.select(ssrc[LUMA_B])
            await wait_until(
                lambda: node.slot is not None and node.slot.source == ssrc[LUMA_B],
                "the switch to B",
            )
            await wait_until(lambda: len(frames) >= decoded_before + 10, "10 frames after it")
            assert ssrc[LUMA_B] in node.keyframe_requests
            assert abs(frames[-1][1] - LUMA_B) < 20

            # the subscriber sees the slot's SSRC only
            sources = subscriber.getReceivers()[0].getSynchronizationSources()
            assert [s.source for s in sources] == [parameters.ssrc]

            # a retransmission from the slot's history reaches the subscriber as valid RTX
            resent = node.forwarded[-5].sequence_number
            rtx = node.history.rtx_for(resent)
            assert rtx is not None and await seams.send_packet(node.sender, rtx)
            await wait_until(
                lambda: any(p.ssrc == parameters.rtx_ssrc for p in received), "the RTX packet"
            )
            rtx_packet = next(p for p in received if p.ssrc == parameters.rtx_ssrc)
            assert rtx_packet.payload_type == parameters.rtx_payload_type
            original = unwrap_rtx(rtx_packet, parameters.payload_type, parameters.ssrc)
            first = next(
                p for p in received if p.sequence_number == resent and p.ssrc == parameters.ssrc
            )
            assert original.payload == first.payload and original.timestamp == first.timestamp

            # the node never decoded or encoded, and dropped what it assembled
            assert not any(codecs.decoded_for(receiver) for receiver in node.hooked)
            assert not codecs.encoded_for(slot_transceiver.sender)
            assert len(codecs.encoder_tasks) == 2  # one per publisher
            assert sum(d.count for d in node.discarded) > 0
            queues = [getattr(r.track, "_queue", None) for r in node.hooked]
            assert all(q is not None and q.empty() for q in queues)  # nothing for a decoder
        finally:
            pli_task.cancel()
            for reader in readers:
                reader.cancel()

    # the forwarded stream: A up to the switch, then B from its keyframe, no gap, no mix
    sources_in_order = [f.source for f in node.forwarded]
    switch = sources_in_order.index(ssrc[LUMA_B])
    assert set(sources_in_order[:switch]) == {ssrc[LUMA_A]}
    assert set(sources_in_order[switch:]) == {ssrc[LUMA_B]}
    assert node.forwarded[0].keyframe and node.forwarded[switch].keyframe
    sequence = [f.sequence_number for f in node.forwarded]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(sequence))
    step = (node.forwarded[switch].timestamp - node.forwarded[switch - 1].timestamp) & 0xFFFFFFFF
    assert 0 < step < 90000 // 2  # on by the wall time between the two packets

    # the subscriber decoded without errors, with increasing pts across the switch
    pts = [p for p, _ in frames]
    assert all(0 < b - a < 90000 for a, b in itertools.pairwise(pts))
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not problems, [r.getMessage() for r in problems]
