"""Fuzz target: the VP8 payload descriptor (media_fleet.rtp.vp8), read from every video packet.

Contract: ``parse_descriptor`` returns a descriptor whose offsets lie inside the payload, or
raises ValueError (too short for what it announces); nothing else. Round trip:
``rewrite_descriptor`` with new ids changes exactly those bytes, and parsing the result gives
the new ids (masked to the packet's width) and the same everything else.
"""

from __future__ import annotations

from tests.fuzz import harness

with harness.instrumented(__name__):
    from media_fleet.rtp.vp8 import (
        PICTURE_ID_MASK_7,
        PICTURE_ID_MASK_15,
        Vp8Descriptor,
        parse_descriptor,
        rewrite_descriptor,
    )


def check(data: bytes) -> None:
    try:
        descriptor = parse_descriptor(data)
    except ValueError:
        return
    _check_bounds(data, descriptor)
    # new ids derived from the input, so the fuzzer controls them too
    new_picture_id = (int.from_bytes(data[-2:], "big") + 1) & PICTURE_ID_MASK_15
    new_tl0 = (data[-1] + 1) & 0xFF
    rewritten = rewrite_descriptor(data, descriptor, new_picture_id, new_tl0)
    _check_rewrite(data, descriptor, rewritten, new_picture_id, new_tl0)
    # writing the values it already has must give the same bytes
    same = rewrite_descriptor(data, descriptor, descriptor.picture_id, descriptor.tl0picidx)
    assert same == data, (data, same)


def _check_bounds(data: bytes, d: Vp8Descriptor) -> None:
    assert 1 <= d.size <= len(data), d
    assert 0 <= d.partition_id <= 0x0F, d
    if d.picture_id_bits == 0:
        assert d.picture_id is None, d
    else:
        assert d.picture_id is not None and d.picture_id_bits in (7, 15), d
        assert d.picture_id_offset + d.picture_id_bits // 8 + 1 <= d.size, d
        assert 0 <= d.picture_id <= (1 << d.picture_id_bits) - 1, d
    if d.tl0picidx is not None:
        assert d.tl0picidx_offset < d.size and data[d.tl0picidx_offset] == d.tl0picidx, d
    if d.keyframe:
        assert d.start_of_partition and d.partition_id == 0 and d.size < len(data), d
        assert not data[d.size] & 0x01, d


def _check_rewrite(
    data: bytes, d: Vp8Descriptor, rewritten: bytes, picture_id: int, tl0: int
) -> None:
    assert len(rewritten) == len(data)
    again = parse_descriptor(rewritten)
    expected_picture_id = None
    if d.picture_id_bits == 15:
        expected_picture_id = picture_id
    elif d.picture_id_bits == 7:
        expected_picture_id = picture_id & PICTURE_ID_MASK_7
    assert again.picture_id == expected_picture_id, (d, again)
    assert again.tl0picidx == (tl0 if d.tl0picidx is not None else None), (d, again)
    assert again._replace(picture_id=d.picture_id, tl0picidx=d.tl0picidx) == d, (d, again)
    # nothing outside the two fields moved
    touched: set[int] = set()
    if d.picture_id_bits:
        touched.update(range(d.picture_id_offset, d.picture_id_offset + d.picture_id_bits // 8 + 1))
    if d.tl0picidx is not None:
        touched.add(d.tl0picidx_offset)
    assert all(rewritten[i] == data[i] for i in range(len(data)) if i not in touched)


if __name__ == "__main__":
    harness.main(check)
