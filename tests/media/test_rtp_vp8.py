"""The VP8 payload descriptor: parse the fields a forwarder needs, rewrite ids in place."""

import pytest

from media_fleet.rtp.vp8 import parse_descriptor, rewrite_descriptor


def descriptor(
    *,
    start: bool = True,
    pid: int = 0,
    picture_id: int | None = None,
    bits: int = 15,
    tl0: int | None = None,
    tid: int | None = None,
    keyframe: bool = False,
    body: bytes = b"\x9d\x01\x2a",
) -> bytes:
    """A VP8 payload: descriptor, then a payload header byte (P bit) and some body bytes."""
    first = (0x10 if start else 0) | pid
    out = bytearray([first])
    if picture_id is not None or tl0 is not None or tid is not None:
        out[0] |= 0x80
        ext = (0x80 if picture_id is not None else 0) | (0x40 if tl0 is not None else 0)
        ext |= 0x20 if tid is not None else 0
        out.append(ext)
        if picture_id is not None:
            if bits == 15:
                out += bytes([0x80 | (picture_id >> 8), picture_id & 0xFF])
            else:
                out.append(picture_id)
        if tl0 is not None:
            out.append(tl0)
        if tid is not None:
            out.append(tid << 6)
    out.append(0x00 if keyframe else 0x01)
    return bytes(out) + body


def test_minimal_descriptor_has_no_ids() -> None:
    d = parse_descriptor(descriptor(keyframe=True))
    assert d.start_of_partition and d.partition_id == 0
    assert d.picture_id is None and d.picture_id_bits == 0 and d.tl0picidx is None
    assert d.size == 1
    assert d.keyframe


def test_fifteen_bit_picture_id_and_tl0() -> None:
    d = parse_descriptor(descriptor(picture_id=0x1234, tl0=200, tid=1))
    assert (d.picture_id, d.picture_id_bits, d.picture_id_offset) == (0x1234, 15, 2)
    assert (d.tl0picidx, d.tl0picidx_offset) == (200, 4)
    assert d.size == 6
    assert not d.keyframe


def test_seven_bit_picture_id() -> None:
    d = parse_descriptor(descriptor(picture_id=0x55, bits=7))
    assert (d.picture_id, d.picture_id_bits, d.size) == (0x55, 7, 3)


def test_keyframe_needs_start_partition_zero_and_key_bit() -> None:
    assert parse_descriptor(descriptor(picture_id=1, keyframe=True)).keyframe
    assert not parse_descriptor(descriptor(picture_id=1, keyframe=False)).keyframe
    assert not parse_descriptor(descriptor(picture_id=1, keyframe=True, start=False)).keyframe
    assert not parse_descriptor(descriptor(picture_id=1, keyframe=True, pid=1)).keyframe


def test_non_reference_bit() -> None:
    payload = bytearray(descriptor())
    payload[0] |= 0x20
    assert parse_descriptor(bytes(payload)).non_reference


@pytest.mark.parametrize("payload", [b"", b"\x80", b"\x90\x80", b"\x90\x80\x80", b"\x90\x40"])
def test_truncated_descriptor_raises(payload: bytes) -> None:
    with pytest.raises(ValueError):
        parse_descriptor(payload)


def test_rewrite_fifteen_bit_keeps_everything_else() -> None:
    payload = descriptor(picture_id=0x1234, tl0=7, tid=2, keyframe=True, body=b"frame")
    d = parse_descriptor(payload)
    out = rewrite_descriptor(payload, d, 0x7FFE, 300)
    again = parse_descriptor(out)
    assert (again.picture_id, again.picture_id_bits, again.tl0picidx) == (0x7FFE, 15, 300 & 0xFF)
    assert again.keyframe and again.size == d.size
    assert out[d.size :] == payload[d.size :]
    assert out[0] == payload[0] and out[1] == payload[1] and out[5] == payload[5]
    assert parse_descriptor(payload).picture_id == 0x1234  # input untouched


def test_rewrite_seven_bit_keeps_width_and_wraps() -> None:
    payload = descriptor(picture_id=0x10, bits=7)
    d = parse_descriptor(payload)
    out = rewrite_descriptor(payload, d, 130, None)
    again = parse_descriptor(out)
    assert (again.picture_id, again.picture_id_bits, len(out)) == (2, 7, len(payload))


def test_rewrite_without_fields_returns_input() -> None:
    payload = descriptor()
    assert rewrite_descriptor(payload, parse_descriptor(payload), 5, 5) is payload
