"""Fuzz target: H.264 keyframe detection (media_fleet.rtp.h264), run on every H.264 packet.

Contract: ``is_keyframe`` takes any bytes and returns a bool; it raises nothing (a truncated
or empty payload is simply not a keyframe) and does not change its input. It is checked
against a plain reference reading of RFC 6184 written here, independently of the module's
own loop.
"""

from __future__ import annotations

from tests.fuzz import harness

with harness.instrumented(__name__):
    from media_fleet.rtp.h264 import is_keyframe

IDR, SPS, PPS, STAP_A, FU_A = 5, 7, 8, 24, 28


def reference(payload: bytes) -> bool:
    """RFC 6184 read the long way: split a STAP-A into its units first, then look at them."""
    if not payload:
        return False
    nal_type = payload[0] & 0x1F
    if 1 <= nal_type <= 23 or nal_type == 0:
        return nal_type in (IDR, SPS, PPS)
    if nal_type == FU_A:
        return len(payload) >= 2 and payload[1] & 0x80 != 0 and payload[1] & 0x1F in (IDR, SPS)
    if nal_type != STAP_A:
        return False
    unit_types = []
    rest = payload[1:]
    # each unit: a 16-bit size, then at least its header byte; a truncated last unit counts
    # with its header if the header byte is there, as a receiver reading "as far as it goes"
    for _ in range(len(payload)):  # bounded: each step consumes at least three bytes
        if len(rest) < 3:
            break
        size = int.from_bytes(rest[:2], "big")
        if size == 0:
            break
        unit_types.append(rest[2] & 0x1F)
        rest = rest[2 + size :]
    return any(t in (IDR, SPS) for t in unit_types)


def check(data: bytes) -> None:
    before = bytes(data)
    got = is_keyframe(data)
    assert isinstance(got, bool), got
    assert data == before
    assert got == reference(data), (data.hex(), got)


if __name__ == "__main__":
    harness.main(check)
