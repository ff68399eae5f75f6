"""Fuzz target: the slot header writer (media_fleet.rtp.header), round-tripped through aiortc.

``SlotHeader`` writes every forwarded packet's header in one ``struct.pack`` from a layout it
precomputes per slot; ``extension_ids`` reads the negotiated ids back out of aiortc's map.
Its contract (the module docstring): the bytes are exactly what ``RtpPacket.serialize``
writes for the same fields and map, and they parse back to those fields.

Input layout (big-endian, fixed so seeds are easy to write; see ``Fields.encode``):
ids of mid, abs-send-time and audio level (3 bytes, 0 = not negotiated); the mid's length
(0xFF: no mid) and its bytes (latin-1, so some take two bytes in UTF-8); marker|payload type;
sequence number (2); timestamp (4); SSRC (4); abs-send-time (3); audio level: a flags byte
(bit 0: present, bit 1: voice) and the level; then the payload.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from aiortc.rtp import RtpPacket

from tests.fuzz import harness
from tests.fuzz.fuzz_rtp_packet import extensions_map

with harness.instrumented(__name__):
    from media_fleet.rtp.header import SlotHeader, extension_ids

_FIXED = struct.Struct("!BHLL3sBB")
NO_MID = 0xFF
MAX_MID_LENGTH = 31


class Fields(NamedTuple):
    ids: tuple[int, int, int]
    mid: str | None
    payload_type: int
    marker: bool
    sequence_number: int
    timestamp: int
    ssrc: int
    abs_send_time: int
    audio_level: tuple[bool, int] | None
    payload: bytes

    @classmethod
    def decode(cls, data: bytes) -> Fields | None:
        if len(data) < 4:
            return None
        ids = (data[0], data[1], data[2])
        mid_length = data[3]
        pos = 4
        mid = None
        if mid_length != NO_MID:
            mid_length &= MAX_MID_LENGTH
            mid = data[pos : pos + mid_length].decode("latin-1")
            pos += mid_length
        if len(data) < pos + _FIXED.size:
            return None
        m_pt, seq, ts, ssrc, abs_bytes, flags, level = _FIXED.unpack_from(data, pos)
        return cls(
            ids,
            mid,
            m_pt & 0x7F,
            bool(m_pt & 0x80),
            seq,
            ts,
            ssrc,
            int.from_bytes(abs_bytes, "big"),
            (bool(flags & 2), level) if flags & 1 else None,
            data[pos + _FIXED.size :],
        )

    def encode(self) -> bytes:
        mid = b"\xff" if self.mid is None else bytes([len(self.mid)]) + self.mid.encode("latin-1")
        flags, level = (
            (0, 0)
            if self.audio_level is None
            else (1 | 2 * self.audio_level[0], self.audio_level[1])
        )
        return (
            bytes(self.ids)
            + mid
            + _FIXED.pack(
                (0x80 if self.marker else 0) | self.payload_type,
                self.sequence_number,
                self.timestamp,
                self.ssrc,
                self.abs_send_time.to_bytes(3, "big"),
                flags,
                level,
            )
            + self.payload
        )


def oracle(extensions: object, f: Fields) -> bytes:
    packet = RtpPacket(
        payload_type=f.payload_type,
        marker=int(f.marker),
        sequence_number=f.sequence_number,
        timestamp=f.timestamp,
        ssrc=f.ssrc,
        payload=f.payload,
    )
    packet.extensions.mid = f.mid
    packet.extensions.abs_send_time = f.abs_send_time
    packet.extensions.audio_level = f.audio_level
    return packet.serialize(extensions)  # type: ignore[arg-type]


def check(data: bytes) -> None:
    f = Fields.decode(data)
    if f is None:
        return
    nonzero = [x for x in f.ids if x]
    if len(set(nonzero)) != len(nonzero):
        return  # one id per extension (RFC 8285 section 6), as in fuzz_rtp_packet
    extensions = extensions_map(*f.ids)
    ids = extension_ids(extensions)
    assert (ids.mid, ids.abs_send_time, ids.audio_level) == f.ids, f.ids

    header = SlotHeader(f.ssrc, f.mid, extensions, ids)
    written = header.write(
        f.payload_type,
        f.marker,
        f.sequence_number,
        f.timestamp,
        f.payload,
        f.abs_send_time,
        f.audio_level,
    )
    assert written == oracle(extensions, f), (f, written.hex())

    parsed = RtpPacket.parse(written, extensions)
    assert (parsed.payload_type, bool(parsed.marker)) == (f.payload_type, f.marker)
    assert (parsed.sequence_number, parsed.timestamp, parsed.ssrc) == (
        f.sequence_number,
        f.timestamp,
        f.ssrc,
    )
    assert parsed.payload == f.payload and parsed.csrc == [] and parsed.padding_size == 0
    x = parsed.extensions
    assert x.mid == (f.mid if ids.mid else None), (f, x)
    assert x.abs_send_time == (f.abs_send_time if ids.abs_send_time else None), (f, x)
    level = None
    if ids.audio_level and f.audio_level is not None:
        level = (f.audio_level[0], f.audio_level[1] & 0x7F)
    assert x.audio_level == level, (f, x)


if __name__ == "__main__":
    harness.main(check)
