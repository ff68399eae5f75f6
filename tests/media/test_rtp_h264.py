"""H.264 keyframe detection (RFC 6184) on hand-built payloads and aiortc's own packets."""

import fractions

import pytest
from aiortc.codecs.h264 import H264Encoder
from av import VideoFrame

from media_fleet.rtp.h264 import is_keyframe


def nal(nal_type: int, body: bytes = b"\x88\x84") -> bytes:
    """One NAL unit: header (F=0, NRI=3, type) and a body."""
    return bytes([0x60 | nal_type]) + body


def stap_a(*units: bytes) -> bytes:
    out = bytearray([0x78])  # NRI=3, type 24
    for unit in units:
        out += len(unit).to_bytes(2, "big") + unit
    return bytes(out)


def fu_a(original_type: int, *, start: bool, end: bool = False) -> bytes:
    indicator = 0x60 | 28
    header = (0x80 if start else 0) | (0x40 if end else 0) | original_type
    return bytes([indicator, header]) + b"\x00\x01\x02"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (nal(5), True),  # IDR slice
        (nal(7), True),  # SPS: the start of a keyframe's access unit
        (nal(8), True),  # PPS: likewise
        (nal(1), False),  # non-IDR slice
        (nal(6), False),  # SEI
        (nal(9), False),  # access unit delimiter
        (stap_a(nal(7), nal(8), nal(5)), True),
        (stap_a(nal(6), nal(7)), True),  # the SPS is not first
        (stap_a(nal(6), nal(5)), True),
        (stap_a(nal(6), nal(1)), False),
        (stap_a(nal(8)), False),  # a PPS alone in a STAP-A does not make a keyframe
        (stap_a(nal(6))[:-1], False),  # truncated
        (b"\x78\x00", False),  # too short for a size and a header
        (b"\x78\x00\x00\x65", False),  # a zero size
        (fu_a(5, start=True), True),
        (fu_a(7, start=True), True),
        (fu_a(5, start=False), False),  # a middle fragment of an IDR
        (fu_a(5, start=False, end=True), False),
        (fu_a(1, start=True), False),
        (b"\x7c", False),  # FU-A without its header
        (nal(25), False),  # STAP-B
        (b"", False),  # padding
    ],
)
def test_hand_built_payloads(payload: bytes, expected: bool) -> None:
    assert is_keyframe(payload) is expected


def test_the_payload_is_not_copied_or_changed() -> None:
    payload = stap_a(nal(7), nal(8), nal(5))
    before = bytes(payload)
    assert is_keyframe(memoryview(payload))  # type: ignore[arg-type]
    assert payload == before


def frame(pts: int, luma: int = 100) -> VideoFrame:
    out = VideoFrame(width=320, height=240, format="yuv420p")
    for plane, value in zip(out.planes, (luma, 128, 128), strict=True):
        plane.update(bytes([value]) * plane.buffer_size)
    out.pts = pts
    out.time_base = fractions.Fraction(1, 90000)
    return out


def test_aiortc_h264_encoder_keyframes_and_p_frames() -> None:
    encoder = H264Encoder()
    keyframe, _ = encoder.encode(frame(0), force_keyframe=True)
    assert keyframe and is_keyframe(keyframe[0])
    # later packets of the same keyframe (FU-A middles/ends, if any) do not start one
    assert all(not is_keyframe(p) for p in keyframe[1:] if p[0] & 0x1F == 28 and not p[1] & 0x80)

    deltas = []
    for index in range(1, 4):
        packets, _ = encoder.encode(frame(index * 3000, 100 + index))
        deltas.extend(packets)
    assert deltas and not any(is_keyframe(p) for p in deltas)

    again, _ = encoder.encode(frame(4 * 3000), force_keyframe=True)
    assert again and is_keyframe(again[0])
