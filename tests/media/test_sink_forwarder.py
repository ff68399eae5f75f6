"""SlotForwarder and the receive hook against scripted sinks: what a sink's answers mean.

No network: a :class:`Source` with a stand-in receiver, packets built by hand, sinks that
answer as the test says. The peer-connection path is covered by test_sink.py and
test_sfu_room.py.
"""

from typing import Any, cast

from aiortc.rtp import RtpPacket

from media_fleet.rtp.vp8 import parse_descriptor
from media_fleet.sfu.forwarding import SlotForwarder, Source, receive_hook
from media_fleet.sfu.sink import PacketRefused, SinkFeedback
from tests.media.test_rtp_vp8 import descriptor

A, B = 0xAAAA, 0xBBBB
VP8 = 96


class ScriptedSink:
    """Answers ``send`` with the next of ``answers`` (True once they run out)."""

    ssrc = 0x51
    clock_rate = 90000

    def __init__(self, answers: list[bool | type[Exception]] | None = None, batch: Any = None):
        self.payload_types = {"video/vp8": 100}
        self.batch = batch
        self.answers = list(answers or [])
        self.sent: list[tuple[int, bool, int, int, bytes]] = []
        self.feedback: SinkFeedback | None = None

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
        answer = self.answers.pop(0) if self.answers else True
        if answer is PacketRefused:
            raise PacketRefused
        if answer is True:
            self.sent.append((payload_type, marker, sequence_number, timestamp, payload))
            if self.batch is not None:
                self.batch.queued += 1
        return answer is True

    def attach(self, feedback: SinkFeedback) -> None:
        self.feedback = feedback

    def detach(self) -> None:
        pass


class NoFeedback:
    async def request_keyframe(self) -> None:
        pass

    def report_bandwidth(self, bitrate: int) -> None:
        pass


def source(ssrc: int, mime_type: str = "video/vp8") -> Source:
    stand_in = cast(Any, None)  # the slot path never touches the receiver
    made = Source("p", "camera", stand_in, VP8, None, stand_in, mime_type)
    made.ssrc = ssrc
    return made


def packet(ssrc: int, sequence_number: int, *, key: bool = False, marker: bool = True) -> RtpPacket:
    return RtpPacket(
        payload_type=VP8,
        marker=int(marker),
        sequence_number=sequence_number,
        timestamp=3000 * sequence_number,
        ssrc=ssrc,
        payload=descriptor(picture_id=sequence_number, keyframe=key),
    )


def slot_for(
    sink: ScriptedSink, *sources: Source
) -> tuple[SlotForwarder, dict[int, Source], list[int]]:
    live = {s.ssrc: s for s in sources if s.ssrc is not None}
    recorded: list[int] = []
    slot = SlotForwarder("video", live, recorded.append)
    slot.attach(sink, NoFeedback())
    return slot, live, recorded


def offer(slot: SlotForwarder, src: Source, rtp: RtpPacket) -> None:
    slot.forward(src, rtp, 0, 1, parse_descriptor(rtp.payload))


def test_packets_reach_the_sink_with_the_sinks_payload_type_once_a_keyframe_came() -> None:
    sink = ScriptedSink()
    camera = source(A)
    slot, _, recorded = slot_for(sink, camera)
    assert sink.feedback is not None  # attached with the slot's feedback
    slot.select(camera)
    assert camera.slots == {slot}

    offer(slot, camera, packet(A, 10))  # a delta frame: not yet
    offer(slot, camera, packet(A, 11, key=True))
    offer(slot, camera, packet(A, 12))
    assert [(pt, seq) for pt, _, seq, _, _ in sink.sent] == [(100, 11), (100, 12)]
    assert slot.forwarded == 2 and recorded == [1, 1]


def test_a_sink_that_cannot_carry_packets_restarts_a_video_slot_from_a_keyframe() -> None:
    sink = ScriptedSink([True, False])
    camera = source(A)
    slot, _, _ = slot_for(sink, camera)
    slot.select(camera)
    offer(slot, camera, packet(A, 1, key=True))
    offer(slot, camera, packet(A, 2))  # not connected: dropped, the slot waits for a keyframe
    offer(slot, camera, packet(A, 3))
    offer(slot, camera, packet(A, 4, key=True))
    offer(slot, camera, packet(A, 5))
    # incoming 4 (the next keyframe) and 5 go out as 3 and 4: the slot's numbers run on
    assert [seq for _, _, seq, _, _ in sink.sent] == [1, 3, 4]
    assert parse_descriptor(sink.sent[1][4]).keyframe
    assert slot.forwarded == 3


def test_a_refused_packet_is_dropped_and_the_stream_goes_on() -> None:
    sink = ScriptedSink([True, PacketRefused])
    camera = source(A)
    slot, _, recorded = slot_for(sink, camera)
    slot.select(camera)
    for seq in (1, 2, 3):
        offer(slot, camera, packet(A, seq, key=seq == 1))
    assert [seq for _, _, seq, _, _ in sink.sent] == [1, 3]
    assert slot.forwarded == 2 and len(recorded) == 2


def test_a_codec_the_sink_does_not_take_is_never_forwarded() -> None:
    sink = ScriptedSink()
    camera = source(A, "video/h264")
    slot, _, _ = slot_for(sink, camera)
    slot.select(camera)
    offer(slot, camera, packet(A, 1, key=True))
    assert sink.sent == [] and slot.forwarded == 0


def test_a_switch_waits_for_the_end_of_the_current_frame() -> None:
    sink = ScriptedSink()
    a, b = source(A), source(B)
    slot, _, _ = slot_for(sink, a, b)
    slot.select(a)
    offer(slot, a, packet(A, 1, key=True, marker=False))  # a's frame is open
    slot.select(b)
    offer(slot, b, packet(B, 50, key=True))  # b's keyframe mid-frame: not taken
    offer(slot, a, packet(A, 2))  # a's frame ends
    offer(slot, b, packet(B, 51, key=True))
    offer(slot, a, packet(A, 3))  # a is switched away: it stops being offered to the slot
    assert [seq for _, _, seq, _, _ in sink.sent] == [1, 2, 3]  # a1, a2, then b51 as 3
    taken = parse_descriptor(sink.sent[2][4])
    assert taken.keyframe and taken.picture_id == 3  # b's picture ids continue a's
    assert slot not in a.slots and slot in b.slots


class CountingBatch:
    def __init__(self) -> None:
        self.queued = 0
        self.flushes: list[int] = []

    def flush(self) -> None:
        self.flushes.append(self.queued)
        self.queued = 0


async def test_the_receive_hook_flushes_each_batch_once_after_the_fan_out() -> None:
    batch = CountingBatch()
    first, second = ScriptedSink(batch=batch), ScriptedSink(batch=batch)
    camera = source(A)
    slots = []
    for sink in (first, second):
        slot, _, _ = slot_for(sink, camera)
        slot.select(camera)
        slots.append(slot)
    assert camera.batches == {batch}
    levels: list[tuple[str, int]] = []
    on_packet = receive_hook(
        camera, lambda s, ssrc: None, lambda p, level: levels.append((p, level))
    )
    for seq in range(1, 6):
        await on_packet(packet(A, seq, key=seq == 1), 0)
    assert batch.flushes == [2, 2, 2, 2, 2]  # the two copies of each packet leave together
    assert len(first.sent) == len(second.sent) == 5 and not levels
