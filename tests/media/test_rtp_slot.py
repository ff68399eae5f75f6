"""SlotRewriter: a fixed outgoing stream, continuous across source switches."""

from media_fleet.rtp.seqnum import seq_add, seq_newer, timestamp_add, timestamp_newer
from media_fleet.rtp.slot import RewrittenPacket, SlotRewriter
from media_fleet.rtp.vp8 import parse_descriptor
from tests.media.test_rtp_h264 import fu_a, nal, stap_a
from tests.media.test_rtp_vp8 import descriptor

A = 0xAAAA
B = 0xBBBB


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def audio_slot(clock: FakeClock, **kwargs: int) -> SlotRewriter:
    return SlotRewriter(
        ssrc=1, payload_type=111, kind="audio", clock_rate=48000, clock=clock, **kwargs
    )


def video_slot(clock: FakeClock) -> SlotRewriter:
    return SlotRewriter(ssrc=2, payload_type=96, kind="video", clock_rate=90000, clock=clock)


def key(picture_id: int | None = None, tl0: int | None = None) -> bytes:
    return descriptor(picture_id=picture_id, tl0=tl0, keyframe=True)


def delta(picture_id: int | None = None, tl0: int | None = None, start: bool = True) -> bytes:
    return descriptor(picture_id=picture_id, tl0=tl0, start=start)


def head(out: RewrittenPacket | None) -> tuple[int, int]:
    """The outgoing (sequence number, timestamp) of a forwarded packet."""
    assert out is not None
    return out.sequence_number, out.timestamp


def test_serial_arithmetic_wraps() -> None:
    assert seq_add(0xFFFF, 1) == 0 and seq_newer(0, 0xFFFF) and not seq_newer(0xFFFF, 0)
    assert not seq_newer(5, 5)
    assert timestamp_add(0xFFFFFFFF, 2) == 1 and timestamp_newer(1, 0xFFFFFFF0)


def test_first_audio_source_keeps_its_numbers_or_the_initial_ones() -> None:
    clock = FakeClock()
    slot = audio_slot(clock)
    slot.select(A)
    assert slot.rewrite(A, 100, 5000, b"x") == (100, 5000, b"x")
    assert slot.source == A

    slot = audio_slot(clock, initial_sequence=7, initial_timestamp=9)
    slot.select(A)
    assert head(slot.rewrite(A, 100, 5000, b"x")) == (7, 9)
    assert head(slot.rewrite(A, 101, 5960, b"x")) == (8, 969)


def test_nothing_is_forwarded_without_a_selected_source() -> None:
    slot = audio_slot(FakeClock())
    assert slot.rewrite(A, 1, 1, b"x") is None
    slot.select(A)
    slot.select(None)
    assert slot.rewrite(A, 1, 1, b"x") is None


def test_audio_switch_is_immediate_and_continuous() -> None:
    clock = FakeClock()
    slot = audio_slot(clock)
    slot.select(A)
    for i in range(5):
        slot.rewrite(A, 100 + i, 960 * i, b"a")
        clock.now += 0.02
    # last sent: seq 104, ts 3840, at t0+0.08; now t0+0.10
    slot.select(B)
    assert slot.keyframe_request() is None  # audio never asks for keyframes
    assert slot.rewrite(A, 105, 4800, b"a") == (105, 4800, b"a")  # until B's first packet
    clock.now += 0.1
    assert slot.rewrite(B, 30000, 123456, b"b") == (106, 4800 + 4800, b"b")
    assert slot.rewrite(B, 30001, 123456 + 960, b"b") == (107, 9600 + 960, b"b")
    assert slot.rewrite(A, 106, 5760, b"a") is None  # the old source is cut off
    assert slot.source == B and slot.pending_source is None


def test_switch_across_sequence_and_timestamp_wrap() -> None:
    clock = FakeClock()
    slot = audio_slot(clock, initial_sequence=0xFFFE, initial_timestamp=0xFFFFFF00)
    slot.select(A)
    assert head(slot.rewrite(A, 10, 0, b"")) == (0xFFFE, 0xFFFFFF00)
    assert head(slot.rewrite(A, 11, 960, b"")) == (0xFFFF, (0xFFFFFF00 + 960) & 0xFFFFFFFF)
    clock.now += 0.02
    slot.select(B)
    out = slot.rewrite(B, 0xFFFF, 0xFFFFFFFF, b"")
    assert head(out) == (0, (0xFFFFFF00 + 960 + 960) & 0xFFFFFFFF)
    out = slot.rewrite(B, 0, 959, b"")  # the source itself wraps too
    assert head(out) == (1, (0xFFFFFF00 + 960 * 3) & 0xFFFFFFFF)


def test_out_of_order_and_late_packets_of_the_current_source() -> None:
    clock = FakeClock()
    slot = audio_slot(clock, initial_sequence=500, initial_timestamp=0)
    slot.select(A)
    slot.rewrite(A, 10, 0, b"")
    assert head(slot.rewrite(A, 12, 1920, b"")) == (502, 1920)
    assert head(slot.rewrite(A, 11, 960, b"")) == (501, 960)  # late: same mapping
    clock.now += 0.02
    slot.select(B)
    slot.rewrite(B, 40, 0, b"")
    # a switch continues from the newest packet sent (502), not the last one (501)
    assert head(slot.rewrite(B, 41, 960, b"")) == (504, 1920 + 960 + 960)
    # B's packets from before its switch point would collide with A's: dropped
    assert slot.rewrite(B, 39, 0, b"") is None


def test_video_switch_waits_for_the_new_source_keyframe() -> None:
    clock = FakeClock()
    slot = video_slot(clock)
    slot.select(A)
    assert slot.rewrite(A, 1, 0, delta(10)) is None  # a first source starts on a keyframe too
    assert slot.keyframe_request() == A
    assert head(slot.rewrite(A, 2, 3000, key(11))) == (2, 3000)
    assert head(slot.rewrite(A, 3, 6000, delta(12))) == (3, 6000)
    clock.now += 0.033

    slot.select(B)
    assert slot.rewrite(B, 900, 77, delta(40)) is None  # B has no keyframe yet
    assert head(slot.rewrite(A, 4, 9000, delta(13))) == (4, 9000)  # A keeps the slot fed
    assert slot.source == A and slot.pending_source == B
    clock.now += 0.005
    out = slot.rewrite(B, 901, 3077, key(41))
    assert head(out) == (5, 9000 + 450)
    assert slot.source == B
    assert slot.rewrite(A, 5, 12000, delta(14)) is None
    assert head(slot.rewrite(B, 902, 6077, delta(42))) == (6, 9450 + 3000)


def test_keyframe_requests_repeat_every_300_ms_until_the_keyframe() -> None:
    clock = FakeClock()
    slot = video_slot(clock)
    slot.select(A)
    slot.rewrite(A, 1, 0, key(1))
    assert slot.keyframe_request() is None  # nothing pending
    slot.select(B)
    assert slot.keyframe_request() == B  # at once on switch
    assert slot.keyframe_request() is None
    clock.now += 0.299
    assert slot.keyframe_request() is None
    clock.now += 0.002
    assert slot.keyframe_request() == B
    slot.select(B)  # selecting it again does not restart the timer
    assert slot.keyframe_request() is None
    clock.now += 0.301
    assert slot.keyframe_request() == B
    slot.rewrite(B, 50, 0, key(1))
    clock.now += 1.0
    assert slot.keyframe_request() is None
    slot.select(A)
    slot.select(B)  # switching back to the current source cancels the pending one
    assert slot.pending_source is None and slot.keyframe_request() is None


def picture_id(out: RewrittenPacket | None) -> tuple[int | None, int | None]:
    assert out is not None
    d = parse_descriptor(out.payload)
    return d.picture_id, d.tl0picidx


def test_picture_id_and_tl0picidx_continue_across_a_switch() -> None:
    clock = FakeClock()
    slot = video_slot(clock)
    slot.select(A)
    assert picture_id(slot.rewrite(A, 1, 0, key(0x7FFE, tl0=250))) == (0x7FFE, 250)
    assert picture_id(slot.rewrite(A, 2, 3000, delta(0x7FFF, tl0=250))) == (0x7FFF, 250)
    slot.select(B)
    assert picture_id(slot.rewrite(B, 10, 0, key(1234, tl0=5))) == (0, 251)
    assert picture_id(slot.rewrite(B, 11, 0, delta(1234, tl0=5, start=False))) == (0, 251)
    assert picture_id(slot.rewrite(B, 12, 3000, delta(1235, tl0=5))) == (1, 251)
    assert picture_id(slot.rewrite(B, 13, 6000, delta(1236, tl0=6))) == (2, 252)


def test_seven_bit_picture_id_keeps_its_width_and_wraps_mod_128() -> None:
    clock = FakeClock()
    slot = video_slot(clock)
    slot.select(A)
    slot.rewrite(A, 1, 0, key(300))
    slot.select(B)
    out = slot.rewrite(B, 10, 0, descriptor(picture_id=100, bits=7, keyframe=True))
    assert out is not None
    d = parse_descriptor(out.payload)
    assert (d.picture_id, d.picture_id_bits) == (301 % 128, 7)
    out = slot.rewrite(B, 11, 3000, descriptor(picture_id=127, bits=7))
    assert out is not None
    assert parse_descriptor(out.payload).picture_id == (301 + 27) % 128


def test_payload_without_descriptor_fields_is_passed_through_unchanged() -> None:
    clock = FakeClock()
    slot = video_slot(clock)
    slot.select(A)
    payload = key()
    out = slot.rewrite(A, 1, 0, payload)
    assert out is not None and out.payload is payload
    assert head(slot.rewrite(A, 2, 0, b"")) == (2, 0)  # padding-only: keeps the seq running
    assert slot.rewrite(A, 3, 0, b"\x80") is None  # a truncated descriptor is dropped
    slot.select(B)
    assert slot.rewrite(B, 9, 0, b"") is None  # padding never starts a switch
    assert slot.source == A


def test_a_long_running_source_is_never_mistaken_for_late_packets() -> None:
    clock = FakeClock()
    slot = audio_slot(clock)
    slot.select(A)
    for i in range(3 * 65536 + 10):  # three sequence-number cycles after the switch
        assert slot.rewrite(A, (40000 + i) & 0xFFFF, 960 * i, b"") is not None
    # a slightly late packet, many cycles after the switch, is mapped, not dropped
    assert slot.rewrite(A, (40000 + 3 * 65536) & 0xFFFF, 0, b"") is not None


H264_IDR = stap_a(nal(7), nal(8), nal(5))
H264_P = nal(1)


def test_h264_switch_waits_for_the_new_source_keyframe_and_passes_the_payload() -> None:
    clock = FakeClock()
    slot = video_slot(clock)
    slot.select(A)
    assert slot.rewrite(A, 1, 0, H264_P, "h264") is None  # a first source starts on a keyframe
    assert slot.rewrite(A, 2, 0, fu_a(5, start=False), "h264") is None  # not a keyframe start
    assert slot.rewrite(A, 3, 3000, H264_IDR, "h264") == (3, 3000, H264_IDR)
    assert slot.rewrite(A, 4, 3000, fu_a(5, start=False, end=True), "h264") == (
        4,
        3000,
        fu_a(5, start=False, end=True),
    )
    assert slot.rewrite(A, 5, 6000, H264_P, "h264") == (5, 6000, H264_P)  # unchanged payload
    clock.now += 0.033

    slot.select(B)
    assert slot.rewrite(B, 900, 77, H264_P, "h264") is None
    assert slot.rewrite(B, 901, 77, fu_a(5, start=False), "h264") is None
    assert head(slot.rewrite(A, 6, 9000, H264_P, "h264")) == (6, 9000)
    clock.now += 0.005
    assert head(slot.rewrite(B, 902, 3077, fu_a(5, start=True), "h264")) == (7, 9450)
    assert slot.source == B
    assert slot.rewrite(A, 7, 12000, H264_P, "h264") is None
    assert head(slot.rewrite(B, 903, 3077, fu_a(5, start=False, end=True), "h264")) == (8, 9450)


def test_a_slot_switches_from_vp8_to_h264_and_back() -> None:
    clock = FakeClock()
    slot = video_slot(clock)
    slot.select(A)  # A sends VP8
    assert picture_id(slot.rewrite(A, 1, 0, key(500, tl0=9))) == (500, 9)
    assert picture_id(slot.rewrite(A, 2, 3000, delta(501, tl0=9))) == (501, 9)
    clock.now += 0.033

    slot.select(B)  # B sends H.264
    assert slot.rewrite(B, 40, 100, H264_P, "h264") is None  # waits for B's keyframe
    assert head(slot.rewrite(A, 3, 6000, delta(502, tl0=9))) == (3, 6000)
    assert slot.keyframe_request() == B
    clock.now += 0.010
    out = slot.rewrite(B, 41, 200, H264_IDR, "h264")
    assert out == (4, 6000 + 900, H264_IDR)  # the H.264 payload is not touched
    assert slot.source == B
    assert slot.rewrite(A, 4, 9000, delta(503, tl0=9)) is None
    assert slot.rewrite(B, 42, 3200, H264_P, "h264") == (5, 6900 + 3000, H264_P)
    clock.now += 0.033

    slot.select(A)  # back to VP8: its PictureID and TL0PICIDX run on from the last VP8 sent
    assert slot.rewrite(A, 5, 12000, delta(504, tl0=9)) is None
    out = slot.rewrite(A, 6, 15000, key(505, tl0=10))
    assert head(out) == (6, 9900 + 2970)
    assert picture_id(out) == (503, 10)


def real_vp8_payloads(count: int, first_picture_id: int) -> list[bytes]:
    """VP8 payloads (descriptor + data) of aiortc's own encoder and packetizer."""
    from fractions import Fraction

    import av
    from aiortc.codecs.vpx import Vp8Encoder

    encoder = Vp8Encoder()
    encoder.picture_id = first_picture_id
    payloads: list[bytes] = []
    index = 0
    while len(payloads) < count:
        frame = av.VideoFrame(width=160, height=120, format="yuv420p")
        for plane in frame.planes:
            plane.update(bytes([(index * 37) & 0xFF]) * plane.buffer_size)
        frame.pts, frame.time_base = index * 3000, Fraction(1, 90000)
        payloads.extend(encoder.encode(frame, force_keyframe=index % 10 == 0)[0])
        index += 1
    return payloads[:count]


def test_a_descriptor_parsed_once_rewrites_exactly_like_parsing_per_slot() -> None:
    """On real VP8 packets, across a switch that shifts PictureID, passing the descriptor
    the room parsed once per packet gives the same output as the rewriter parsing it."""
    clock = FakeClock()
    per_slot, given = video_slot(clock), video_slot(clock)
    streams = {A: real_vp8_payloads(40, 100), B: real_vp8_payloads(40, 20000)}
    shifted = 0
    for slot in (per_slot, given):
        slot.select(A)
    for index in range(80):
        ssrc = A if index < 40 else B
        if index == 25:
            for slot in (per_slot, given):
                slot.select(B)
        payload = streams[ssrc][index % 40]
        seq, ts = 1000 + index, 90000 * index
        clock.now += 0.01
        want = per_slot.rewrite(ssrc, seq, ts, payload, "vp8")
        got = given.rewrite(ssrc, seq, ts, payload, "vp8", parse_descriptor(payload))
        assert got == want, index
        if got is not None and got.payload != payload:
            shifted += 1
            assert parse_descriptor(got.payload).picture_id != parse_descriptor(payload).picture_id
            assert (
                got.payload[parse_descriptor(payload).size :]
                == payload[parse_descriptor(payload).size :]
            )
    assert shifted > 0  # the switch to B (at its keyframe) rewrote PictureIDs
