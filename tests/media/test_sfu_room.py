"""MeetingRoom end to end: headless aiortc participants on 127.0.0.1, one event loop.

The clients encode and decode (allowed on the client side); the room must do neither. Each
client publishes a tone whose RFC 6464 level it controls (aiortc computes the level
from the samples it encodes) and a flat-colour camera (optionally with a low clone), and
subscribes: it decodes everything the room sends and records it per mid.
"""

import asyncio
import datetime
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
    clock,
)
from aiortc.rtp import (
    RTCP_PSFB_PLI,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpSrPacket,
    RtpPacket,
    unwrap_rtx,
)
from av import VideoFrame

from media_fleet.rtc import seams
from media_fleet.rtp.vp8 import parse_descriptor
from media_fleet.sfu.room import MeetingRoom, SlotState
from tests.media.synthetic_media import FlatVideoTrack, ToneTrack

WAIT = 10.0
CONFIGURATION = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
"aiortc clients need max-bundle: with balanced, a third m-line of one kind never sends."
LOUD = 16000
"Square-wave amplitude: about -6 dBov, an RFC 6464 level of 6."


@dataclass
class Decoded:
    """What a client decoded on one mid."""

    frames: int = 0
    luma: int | None = None
    width: int | None = None


@dataclass
class Client:
    participant_id: str
    luma: int
    low_layer: bool = False
    tone: ToneTrack = field(default_factory=ToneTrack)
    publish_pc: RTCPeerConnection = field(default_factory=lambda: RTCPeerConnection(CONFIGURATION))
    subscribe_pc: RTCPeerConnection = field(
        default_factory=lambda: RTCPeerConnection(CONFIGURATION)
    )
    camera: RTCRtpSender | None = None
    camera_low: RTCRtpSender | None = None
    decoded: dict[str, Decoded] = field(default_factory=dict)
    keyframes: list[tuple[str, float]] = field(default_factory=list)
    "(mid, loop time) of each VP8 keyframe packet that reached the subscribe connection."
    plis: list[tuple[int, float]] = field(default_factory=list)
    "(media SSRC, loop time) of each PLI that reached a publish sender."
    received: dict[str, list[RtpPacket]] = field(default_factory=dict)
    "Every RTP packet that reached the subscribe connection, by mid (RTX still wrapped)."
    messages: list[dict[str, Any]] = field(default_factory=list)
    tasks: list["asyncio.Task[None]"] = field(default_factory=list)

    def ssrc(self, sender: RTCRtpSender | None) -> int:
        assert sender is not None
        return int(sender._ssrc)

    async def join(self, room: MeetingRoom) -> None:
        """Publish (audio, camera[, camera-low]) and subscribe."""
        self.publish_pc.addTrack(self.tone)
        width, height = (320, 240) if self.low_layer else (160, 120)
        self.camera = self.publish_pc.addTrack(FlatVideoTrack(self.luma, width, height))
        if self.low_layer:
            self.camera_low = self.publish_pc.addTrack(FlatVideoTrack(self.luma, 160, 120))
        for sender in (self.camera, self.camera_low):
            if sender is not None:
                seams.install_feedback_hook(sender, self._on_publisher_rtcp)
        await self.publish_pc.setLocalDescription(await self.publish_pc.createOffer())
        answer = await room.publish(self.participant_id, self.publish_pc.localDescription.sdp)
        await self.publish_pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

        self.subscribe_pc.on("track", self._on_track)
        self.subscribe_pc.on("datachannel", self._on_datachannel)
        offer = await room.subscribe(self.participant_id)
        await self.subscribe_pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await self.subscribe_pc.setLocalDescription(await self.subscribe_pc.createAnswer())
        await room.accept_answer(self.participant_id, self.subscribe_pc.localDescription.sdp)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.wait_for(self.publish_pc.close(), 5)
        await asyncio.wait_for(self.subscribe_pc.close(), 5)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == kind]

    async def _on_publisher_rtcp(self, packet: AnyRtcpPacket) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI:
            self.plis.append((packet.media_ssrc, asyncio.get_running_loop().time()))

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        @channel.on("message")
        def on_message(message: str | bytes) -> None:
            self.messages.append(json.loads(message))

    def _on_track(self, track: MediaStreamTrack) -> None:
        transceiver = next(
            t for t in self.subscribe_pc.getTransceivers() if t.receiver.track is track
        )
        mid = transceiver.mid
        assert mid is not None
        decoded = self.decoded.setdefault(mid, Decoded())

        async def tap(packet: RtpPacket, arrival_time_ms: int) -> None:
            self.received.setdefault(mid, []).append(packet)
            if track.kind == "video" and packet.payload:
                try:
                    if parse_descriptor(packet.payload).keyframe:
                        self.keyframes.append((mid, asyncio.get_running_loop().time()))
                except ValueError:
                    pass  # RTX or padding

        seams.install_receive_hook(transceiver.receiver, tap)

        async def read() -> None:
            while True:
                frame = await track.recv()
                decoded.frames += 1
                if isinstance(frame, VideoFrame):
                    plane = frame.planes[0]
                    centre = plane.line_size * (frame.height // 2) + frame.width // 2
                    decoded.luma = bytes(plane)[centre]
                    decoded.width = frame.width

        self.tasks.append(asyncio.ensure_future(read()))


def near(luma: int | None, expected: int) -> bool:
    return luma is not None and abs(luma - expected) < 20


async def wait_until(
    condition: Callable[[], bool],
    what: str,
    timeout: float = WAIT,
    details: Callable[[], object] = lambda: "",
) -> None:
    async def poll() -> None:
        while not condition():  # noqa: ASYNC110 (the conditions are plain state, no events)
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout} s waiting for {what}\n{details()}")


LUMA = {"a": 40, "b": 125, "c": 210}


def video_states(room: MeetingRoom, pid: str) -> list[SlotState]:
    return [s for s in room.slot_states(pid) if s.kind == "camera"]


def fed(room: MeetingRoom, pid: str, kind: str) -> set[str]:
    """Participants feeding the subscriber's slots of this kind right now."""
    return {
        s.feeding_participant_id
        for s in room.slot_states(pid)
        if s.kind == kind and s.feeding_participant_id is not None
    }


async def test_three_participants_see_and_hear_the_other_two_without_node_codecs(
    meeting: tuple[MeetingRoom, list[Client]], caplog: pytest.LogCaptureFixture
) -> None:
    """Tests 1, 3 and 4: forwarding, full/low layers by slot, and no codec in the room."""
    caplog.set_level(logging.WARNING)
    room, clients = meeting
    with seams.watch_codecs() as codecs:
        a = Client("a", LUMA["a"], low_layer=True)  # sends camera 320x240 + camera-low 160x120
        b, c = Client("b", LUMA["b"]), Client("c", LUMA["c"])
        clients += [a, b, c]
        b.tone.amplitude = LOUD  # b is the active speaker
        for client in clients:
            await client.join(room)
        assert room.sessions() == 3

        others = {
            x.participant_id: {y.participant_id for y in clients} - {x.participant_id}
            for x in clients
        }
        await wait_until(
            lambda: all(
                fed(room, pid, "camera") == want and fed(room, pid, "audio") == want
                for pid, want in others.items()
            ),
            "every subscriber fed by the other two (audio and camera)",
            details=lambda: {pid: room.slot_states(pid) for pid in others},
        )
        await wait_until(lambda: room.active_speaker == "b", "b as the active speaker")

        # the speaker slot of b (nobody else spoke: first by join order = a) is a's full
        # layer; c's thumbnail of a is a's low layer, c's speaker slot is b
        def layers_settled() -> bool:
            at_b, at_c = video_states(room, "b"), video_states(room, "c")
            return (
                at_b[0].feeding_ssrc == a.ssrc(a.camera)
                and at_c[0].feeding_participant_id == "b"
                and any(s.feeding_ssrc == a.ssrc(a.camera_low) for s in at_c[1:])
            )

        await wait_until(layers_settled, "the speaker slot full, the thumbnail low")
        mids = {
            pid: {s.feeding_participant_id: s.mid for s in video_states(room, pid)}
            for pid in others
        }

        def decoded_everyone() -> bool:
            for client in clients:
                for other in others[client.participant_id]:
                    seen = client.decoded.get(mids[client.participant_id][other] or "")
                    if seen is None or seen.frames < 5 or not near(seen.luma, LUMA[other]):
                        return False
            return True

        await wait_until(decoded_everyone, "each client decoding the other two's pictures")
        assert b.decoded[mids["b"]["a"] or ""].width == 320  # full layer in the speaker slot
        assert c.decoded[mids["c"]["a"] or ""].width == 160  # low layer in a thumbnail
        assert video_states(room, "c")[0].quality == "full"
        assert {s.quality for s in video_states(room, "c")[1:] if s.participant_id} == {"low"}

        # audio: every client decodes audio on the slots fed by the other two
        def hearing() -> bool:
            for client in clients:
                audio_mids = [
                    s.mid
                    for s in room.slot_states(client.participant_id)
                    if s.kind == "audio" and s.feeding_participant_id is not None
                ]
                if len(audio_mids) != 2:
                    return False
                if any(client.decoded.get(m or "", Decoded()).frames < 10 for m in audio_mids):
                    return False
            return True

        await wait_until(hearing, "each client decoding the other two's audio")

        # the data channel told each client the same map, never with themselves in it
        def told() -> bool:
            for client in clients:
                slots = client.of_type("slots")
                if not slots:
                    return False
                last = slots[-1]
                video = {v["participant_id"] for v in last["video"]} - {None}
                audio = {v["participant_id"] for v in last["audio"]} - {None}
                if video != others[client.participant_id] or audio != video:
                    return False
            return True

        await wait_until(told, "the final slot maps on the data channels")
        for client in clients:
            for message in client.of_type("slots"):
                named = {v["participant_id"] for v in message["video"] + message["audio"]}
                assert client.participant_id not in named
            assert client.of_type("speaker")[-1] == {"type": "speaker", "participant_id": "b"}
        assert c.of_type("slots")[-1]["video"][0] == {
            "slot": 0,
            "mid": mids["c"]["b"],
            "participant_id": "b",
            "quality": "full",
        }
        assert c.of_type("slots")[-1]["screen"] is None

        # nothing in the room decoded or encoded; the publishers' 3 + 4 encoders are all
        assert room.rtp_receivers() and room.rtp_senders()
        assert not any(codecs.decoded_for(r) for r in room.rtp_receivers())
        assert not any(codecs.encoded_for(s) for s in room.rtp_senders())
        assert len(codecs.encoder_tasks) == 7
        assert room.forwarded_streams() == 3 * 4
        await wait_until(lambda: room.packets_per_second() > 100, "the packet rate")
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not problems, [r.getMessage() for r in problems]


async def test_speaker_change_moves_the_speaker_slot_with_a_keyframe(
    meeting: tuple[MeetingRoom, list[Client]],
) -> None:
    """Test 2: a new loud speaker: speaker message, slot map, PLI and keyframe."""
    room, clients = meeting
    a, b, c = Client("a", LUMA["a"]), Client("b", LUMA["b"]), Client("c", LUMA["c"])
    clients += [a, b, c]
    a.tone.amplitude = LOUD
    for client in clients:
        await client.join(room)

    def speaker_slot(client: Client, pid: str) -> bool:
        slots = client.of_type("slots")
        return bool(slots) and slots[-1]["video"][0]["participant_id"] == pid

    await wait_until(
        lambda: (
            b.of_type("speaker")[-1:] == [{"type": "speaker", "participant_id": "a"}]
            and speaker_slot(b, "a")
        ),
        "a as the speaker in b's map",
    )
    slot0 = b.of_type("slots")[-1]["video"][0]["mid"]
    await wait_until(
        lambda: near(b.decoded.get(slot0, Decoded()).luma, LUMA["a"]),
        "b decoding a in the speaker slot",
    )

    loop = asyncio.get_running_loop()
    a.tone.amplitude, c.tone.amplitude = 0, LOUD
    changed_at = loop.time()
    await wait_until(
        lambda: b.of_type("speaker")[-1] == {"type": "speaker", "participant_id": "c"},
        "the speaker message for c",
        timeout=5,
    )
    await wait_until(lambda: speaker_slot(b, "c"), "c in b's speaker slot")
    last = b.of_type("slots")[-1]["video"]
    assert last[0]["mid"] == slot0 and last[0]["quality"] == "full"
    assert "a" in {v["participant_id"] for v in last[1:]}  # a moved to a thumbnail

    # c was asked for a keyframe, it reached b's speaker slot, and b now decodes c there
    await wait_until(
        lambda: any(ssrc == c.ssrc(c.camera) and t > changed_at for ssrc, t in c.plis),
        "a PLI at c's camera",
    )
    await wait_until(
        lambda: any(mid == slot0 and t > changed_at for mid, t in b.keyframes),
        "a keyframe in b's speaker slot",
    )
    frames = b.decoded[slot0].frames
    await wait_until(
        lambda: near(b.decoded[slot0].luma, LUMA["c"]) and b.decoded[slot0].frames > frames + 5,
        "b decoding c in the speaker slot",
    )
    assert video_states(room, "b")[0].feeding_participant_id == "c"
    assert speaker_slot(a, "c")  # a's speaker slot too


async def test_leave_frees_slots_and_close_is_clean(
    meeting: tuple[MeetingRoom, list[Client]], caplog: pytest.LogCaptureFixture
) -> None:
    """Test 5 (and drain): move messages, leave, close."""
    caplog.set_level(logging.WARNING)
    room, clients = meeting
    a, b, c = Client("a", LUMA["a"]), Client("b", LUMA["b"]), Client("c", LUMA["c"])
    clients += [a, b, c]
    for client in clients:
        await client.join(room)
    await wait_until(lambda: room.forwarded_streams() == 3 * 4, "all 12 slots fed")
    await wait_until(lambda: all(x.of_type("slots") for x in clients), "the slot maps")

    await room.tell_clients_to_move()
    await wait_until(lambda: all(x.of_type("move") for x in clients), "the move messages")

    c_connections = room.peer_connections("c")
    assert len(c_connections) == 2
    await room.leave("c")
    assert room.sessions() == 2
    assert all(pc.connectionState == "closed" for pc in c_connections)
    assert fed(room, "a", "camera") <= {"b"} and fed(room, "b", "audio") <= {"a"}
    assert all(s.participant_id != "c" for pid in ("a", "b") for s in room.slot_states(pid))
    await wait_until(lambda: room.forwarded_streams() == 2 * 2, "2 slots each left")
    await wait_until(
        lambda: {v["participant_id"] for v in a.of_type("slots")[-1]["video"]} == {"b", None},
        "a's map without c",
    )

    connections = room.peer_connections()
    await room.close()
    assert room.sessions() == 0 and room.forwarded_streams() == 0
    assert all(pc.connectionState == "closed" for pc in connections)
    assert not [t for t in asyncio.all_tasks() if "MeetingRoom" in repr(t.get_coro())]
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not problems, [r.getMessage() for r in problems]


async def test_slot_feedback_nack_rtx_sender_reports_and_rate_limited_pli(
    meeting: tuple[MeetingRoom, list[Client]],
) -> None:
    """A NACK is answered from the slot's history, SRs are true, a PLI reaches the source."""
    room, clients = meeting
    a, b = Client("a", LUMA["a"]), Client("b", LUMA["b"])
    clients += [a, b]
    for client in clients:
        await client.join(room)
    await wait_until(
        lambda: b.decoded.get(video_states(room, "b")[0].mid or "", Decoded()).frames >= 5,
        "b decoding a",
    )
    slot = video_states(room, "b")[0]
    assert slot.feeding_participant_id == "a" and slot.mid is not None
    transceiver = next(t for t in b.subscribe_pc.getTransceivers() if t.mid == slot.mid)
    receiver = transceiver.receiver
    slot_ssrc = b.received[slot.mid][0].ssrc
    private: Any = receiver  # a name-mangled attribute
    (rtx_ssrc,) = private._RTCRtpReceiver__rtx_ssrc  # from the room's offer (FID group)
    original = b.received[slot.mid][-3]

    # aiortc routes RTP by SSRC or payload type only, never by mid: with ten video m-lines
    # sharing the RTX payload type it drops RTX before any receiver (a browser routes it by
    # the offer's FID group). So the test taps the subscriber's router.
    router = receiver.transport._rtp_router
    route_rtp = router.route_rtp
    retransmitted: list[RtpPacket] = []

    def route(packet: RtpPacket) -> Any:
        if packet.ssrc == rtx_ssrc:
            retransmitted.append(packet)
        return route_rtp(packet)

    setattr(router, "route_rtp", route)  # noqa: B010 (a tap on the instance)

    # a NACK for a packet b got: the room resends it from the slot's history as RTX
    await receiver._send_rtcp_nack(slot_ssrc, [original.sequence_number])
    await wait_until(lambda: bool(retransmitted), "the RTX packet")
    resent = unwrap_rtx(retransmitted[0], original.payload_type, slot_ssrc)
    assert resent.sequence_number == original.sequence_number
    assert resent.payload == original.payload and resent.timestamp == original.timestamp

    # the slot's sender reports carry the forwarded counts (not the stock sender's zeros)
    reports: list[RtcpSrPacket] = []
    handle_rtcp = receiver._handle_rtcp_packet

    async def on_rtcp(packet: AnyRtcpPacket) -> None:
        if isinstance(packet, RtcpSrPacket):
            reports.append(packet)
        await handle_rtcp(packet)

    setattr(receiver, "_handle_rtcp_packet", on_rtcp)  # noqa: B010 (a tap on the instance)
    await wait_until(lambda: bool(reports), "a sender report on the slot", timeout=3)
    info = reports[0].sender_info
    got = [p for p in b.received[slot.mid] if p.ssrc == slot_ssrc]
    assert reports[0].ssrc == slot_ssrc
    assert 0.8 * len(got) <= info.packet_count <= len(got) + 10
    assert abs(clock.datetime_from_ntp(info.ntp_timestamp) - clock.current_datetime()) < (
        datetime.timedelta(seconds=1)
    )

    # three PLIs from b within a few ms reach a's camera once (at most one per 0.5 s)
    await asyncio.sleep(0.6)  # past the switch-driven PLIs of the start
    before = len(a.plis)
    for _ in range(3):
        await receiver._send_rtcp_pli(slot_ssrc)
    await wait_until(lambda: len(a.plis) > before, "the forwarded PLI")
    await asyncio.sleep(0.2)
    assert [ssrc for ssrc, _ in a.plis[before:]] == [a.ssrc(a.camera)]


async def test_last_n_refills_a_slot_when_its_participant_leaves(loopback_only: None) -> None:
    """With one camera slot, the next participant by join order takes over on leave."""
    room = MeetingRoom("m-last-n", video_slots=1, audio_slots=1)
    a, b, c = Client("a", LUMA["a"]), Client("b", LUMA["b"]), Client("c", LUMA["c"])
    try:
        for client in (a, b, c):
            await client.join(room)
        await wait_until(lambda: fed(room, "a", "camera") == {"b"}, "b in a's only slot")
        mid = video_states(room, "a")[0].mid or ""
        await wait_until(lambda: near(a.decoded.get(mid, Decoded()).luma, LUMA["b"]), "b at a")
        await wait_until(lambda: len(fed(room, "a", "audio")) == 1, "one audio slot fed")

        await room.leave("b")
        frames = a.decoded[mid].frames
        await wait_until(
            lambda: near(a.decoded[mid].luma, LUMA["c"]) and a.decoded[mid].frames > frames + 5,
            "a decoding c in the same slot",
        )
        assert a.of_type("slots")[-1]["video"] == [
            {"slot": 0, "mid": mid, "participant_id": "c", "quality": "full"}
        ]
    finally:
        for client in (a, b, c):
            await client.close()
        await asyncio.wait_for(room.close(), 10)
