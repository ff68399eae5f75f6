"""Sinks that are not peer connections take a slot's packets through the subscriber's path.

A real aiortc publisher sends to a real room. Next to a test sink, the room feeds a
:class:`PeerConnectionSink` (the sink of every subscribe connection) over a real aiortc
connection: both are attached in the same turn of the event loop, so both slots switch on
the same keyframe, and the test compares what the test sink got with the serialized RTP the
peer-connection sink handed to SRTP, byte for byte.
"""

import asyncio
import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpTransceiver
from aiortc.rtp import HeaderExtensionsMap
from av import VideoFrame

from media_fleet.rtc import seams
from media_fleet.rtp.header import ExtensionIds, SlotHeader, extension_ids
from media_fleet.rtp.vp8 import parse_descriptor
from media_fleet.sfu import negotiation
from media_fleet.sfu.peer_connection_sink import PeerConnectionSink
from media_fleet.sfu.room import MeetingRoom
from media_fleet.sfu.sink import SinkFeedback
from tests.media.test_sfu_room import CONFIGURATION, LOUD, LUMA, Client, near, wait_until


class RecordingBatch:
    """A send batch that keeps what each flush sent, in groups."""

    def __init__(self) -> None:
        self.queued: list[tuple[RecordingSink, bytes]] = []
        self.flushed: list[list[tuple[RecordingSink, bytes]]] = []

    def flush(self) -> None:
        self.flushed.append(self.queued)
        self.queued = []


class RecordingSink:
    """A sink that is not a peer connection: it writes each packet as a slot's RTP header
    would, with the header it is given, and keeps the bytes."""

    def __init__(
        self,
        header: SlotHeader,
        payload_types: dict[str, int],
        clock_rate: int,
        batch: RecordingBatch | None = None,
    ) -> None:
        self.ssrc = header.ssrc
        self.clock_rate = clock_rate
        self.payload_types = payload_types
        self.batch = batch
        self._header = header
        self.packets: list[bytes] = []
        self.feedback: SinkFeedback | None = None
        self.detached = False

    @classmethod
    def like(cls, sink: PeerConnectionSink, transceiver: RTCRtpTransceiver) -> "RecordingSink":
        """A sink that writes exactly the headers ``sink`` writes (SSRC, mid, extension ids)."""
        extensions_map = seams.header_extensions_map(transceiver.sender)
        header = SlotHeader(sink.ssrc, sink.mid, extensions_map, extension_ids(extensions_map))
        return cls(header, dict(sink.payload_types), sink.clock_rate)

    def send(
        self,
        payload_type: int,
        marker: bool,
        sequence_number: int,
        timestamp: int,
        payload: bytes,
        abs_send_time: int,
        audio_level: tuple[bool, int] | None,
    ) -> bool:
        data = self._header.write(
            payload_type, marker, sequence_number, timestamp, payload, abs_send_time, audio_level
        )
        if self.batch is not None:
            self.batch.queued.append((self, data))
        self.packets.append(data)
        return True

    def attach(self, feedback: SinkFeedback) -> None:
        assert self.feedback is None, "attached twice"
        self.feedback = feedback

    def detach(self) -> None:
        self.detached = True


def plain_sink(
    media: str, batch: RecordingBatch | None = None, ssrc: int = 0x5EED
) -> RecordingSink:
    """A sink with a bare RTP header (no extensions), taking VP8 or Opus."""
    header = SlotHeader(ssrc, None, HeaderExtensionsMap(), ExtensionIds())
    if media == "video":
        return RecordingSink(header, {"video/vp8": 96}, 90000, batch)
    return RecordingSink(header, {"audio/opus": 111}, 48000, batch)


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> dict[int, list[bytes]]:
    """Every RTP packet a peer-connection sink handed to SRTP and sent, by SSRC (before SRTP)."""
    by_ssrc: dict[int, list[bytes]] = defaultdict(list)
    send = seams.SlotTransmitter.send

    def recording_send(self: seams.SlotTransmitter, data: bytes) -> bool:
        sent = send(self, data)
        if sent:
            by_ssrc[int.from_bytes(data[8:12], "big")].append(data)
        return sent

    monkeypatch.setattr(seams.SlotTransmitter, "send", recording_send)
    return by_ssrc


class ReferenceSubscriber:
    """A real aiortc subscriber behind peer-connection sinks, one video and one audio slot.

    The node's side is made with the room's own negotiation and :class:`PeerConnectionSink`;
    the client's side decodes what it receives.
    """

    def __init__(self) -> None:
        self.node = negotiation.new_peer_connection()
        self.client = RTCPeerConnection(CONFIGURATION)
        self.video = negotiation.add_slot(self.node, "video")
        self.audio = negotiation.add_slot(self.node, "audio")
        self.lumas: list[int] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.client.on("track", self._on_track)

    async def connect(self) -> tuple[PeerConnectionSink, PeerConnectionSink]:
        await negotiation.offer(self.node)
        await self.client.setRemoteDescription(self.node.localDescription)
        await self.client.setLocalDescription(await self.client.createAnswer())
        negotiated = await negotiation.accept(self.node, self.client.localDescription.sdp)
        sinks = (
            PeerConnectionSink(self.video, negotiated),
            PeerConnectionSink(self.audio, negotiated),
        )
        # the sinks send from the first packet on: no start-up loss that would re-arm a slot
        await wait_until(
            lambda: (
                self.node.connectionState == "connected"
                and all(seams.sender_started(t.sender) for t in (self.video, self.audio))
            ),
            "the reference connection up and its senders started",
        )
        return sinks

    def _on_track(self, track: MediaStreamTrack) -> None:
        async def read() -> None:
            while True:
                frame = await track.recv()
                if isinstance(frame, VideoFrame):
                    plane = frame.planes[0]
                    centre = plane.line_size * (frame.height // 2) + frame.width // 2
                    self.lumas.append(bytes(plane)[centre])

        self.tasks.append(asyncio.ensure_future(read()))

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.wait_for(self.client.close(), 5)
        await asyncio.wait_for(self.node.close(), 5)


def sequence_numbers(packets: list[bytes]) -> Iterator[int]:
    return (int.from_bytes(packet[2:4], "big") for packet in packets)


async def test_a_test_sink_gets_the_bytes_a_peer_connection_sink_sends(
    meeting: tuple[MeetingRoom, list[Client]], emitted: dict[int, list[bytes]]
) -> None:
    room, clients = meeting
    a = Client("a", LUMA["a"])
    clients.append(a)
    a.tone.amplitude = LOUD  # so that a is heard in the audio slots
    await a.join(room)
    reference = ReferenceSubscriber()
    try:
        video, audio = await reference.connect()
        assert video.payload_types["video/vp8"] and audio.payload_types["audio/opus"]
        probe_video = RecordingSink.like(video, reference.video)
        probe_audio = RecordingSink.like(audio, reference.audio)
        messages: list[dict[str, Any]] = []

        # one turn of the event loop: both slots select a, and switch on the same keyframe
        await room.subscribe_sinks("reference", cameras=[video], audio=[audio])
        await room.subscribe_sinks(
            "probe",
            cameras=[probe_video],
            audio=[probe_audio],
            on_message=lambda text: messages.append(json.loads(text)),
        )
        assert probe_video.feedback is not None and probe_audio.feedback is not None

        await wait_until(
            lambda: len(probe_video.packets) >= 40 and len(probe_audio.packets) >= 40,
            "40 video and 40 audio packets at the test sink",
        )
        await wait_until(
            lambda: any(near(luma, LUMA["a"]) for luma in reference.lumas),
            "the reference subscriber decoding a",
        )
        for probe, sink in ((probe_video, video), (probe_audio, audio)):
            sent = emitted[sink.ssrc]
            assert len(probe.packets) == len(sent)  # the same fan-out, packet for packet
            assert probe.packets == sent  # and the same bytes
            numbers = list(sequence_numbers(sent))
            assert numbers == [(numbers[0] + i) & 0xFFFF for i in range(len(numbers))]
        first = probe_video.packets[0]
        assert parse_descriptor(first[_header_length(first) :]).keyframe  # switched on one

        # the slot map treats the test sinks as a subscriber's slots
        states = room.slot_states("probe")
        assert [(s.kind, s.feeding_participant_id) for s in states] == [
            ("camera", "a"),
            ("audio", "a"),
        ]
        slots = [m for m in messages if m["type"] == "slots"]
        assert slots[-1] == {
            "type": "slots",
            "video": [{"slot": 0, "mid": None, "participant_id": "a", "quality": "full"}],
            "screen": None,
            "audio": [{"slot": 0, "mid": None, "participant_id": "a"}],
        }
        assert any(m["type"] == "speaker" for m in messages)
    finally:
        await reference.close()


def _header_length(packet: bytes) -> int:
    """The RTP header's length, extensions included (no CSRC in forwarded packets)."""
    length = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:
        length += 4 + 4 * int.from_bytes(packet[length + 2 : length + 4], "big")
    return length


async def test_a_sinks_keyframe_request_reaches_the_publisher_and_leave_detaches(
    meeting: tuple[MeetingRoom, list[Client]],
) -> None:
    room, clients = meeting
    a = Client("a", LUMA["a"])
    clients.append(a)
    a.tone.amplitude = LOUD
    await a.join(room)
    camera, microphone = plain_sink("video"), plain_sink("audio", ssrc=0x5EEE)
    await room.subscribe_sinks("probe", cameras=[camera], audio=[microphone])
    assert room.sessions() == 2  # a, and the sink subscriber
    await wait_until(lambda: len(camera.packets) >= 10, "packets at the test sink")
    assert room.forwarded_streams() >= 1

    # the sink's feedback goes upstream: three PLIs in a row reach a's camera once
    await asyncio.sleep(0.6)  # past the switch-driven PLIs of the start
    before = len(a.plis)
    assert camera.feedback is not None
    for _ in range(3):
        await camera.feedback.request_keyframe()
    camera.feedback.report_bandwidth(300_000)
    await wait_until(lambda: len(a.plis) > before, "the PLI at a's camera")
    await asyncio.sleep(0.2)
    assert [ssrc for ssrc, _ in a.plis[before:]] == [a.ssrc(a.camera)]

    await room.leave("probe")
    assert camera.detached and microphone.detached
    assert room.slot_states("probe") == [] and room.sessions() == 1
    received = [len(camera.packets), len(microphone.packets)]
    await asyncio.sleep(0.3)
    assert [len(camera.packets), len(microphone.packets)] == received


async def test_sinks_sharing_a_batch_get_one_flush_per_incoming_packet(
    meeting: tuple[MeetingRoom, list[Client]],
) -> None:
    room, clients = meeting
    a = Client("a", LUMA["a"])
    clients.append(a)
    await a.join(room)
    batch = RecordingBatch()
    first, second = plain_sink("video", batch, ssrc=1), plain_sink("video", batch, ssrc=2)
    await room.subscribe_sinks("p1", cameras=[first])
    await room.subscribe_sinks("p2", cameras=[second])
    await wait_until(lambda: len(second.packets) >= 30, "packets at both sinks")

    assert not batch.queued  # everything queued during a fan-out left with its flush
    groups = [group for group in batch.flushed if group]
    assert len(groups) >= 30
    for group in groups:
        # one flush carries the copies of one publisher packet, one per sink
        assert sorted(sink.ssrc for sink, _ in group) == [1, 2]
        (_, one), (_, other) = group
        assert one[2:4] == other[2:4] and one[12:] == other[12:]
