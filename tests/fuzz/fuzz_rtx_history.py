"""Fuzz target: the RTX packets the slot history builds from sent packets (media_fleet.rtp.history).

``PacketHistory.rtx_for`` reads the header of a packet the node sent (CSRC count, extension
block length, padding) to rebuild it as an RFC 4588 retransmission. Its input is whatever
the node serialized, so the domain here is every packet aiortc's ``RtpPacket.parse``
accepts (a valid RTP packet), with any CSRCs, extension profile or padding.

Contract: ``rtx_for`` never raises for such a packet, and its output is the RTX packet:
aiortc parses it, with the RTX payload type, SSRC and sequence number, the original's
marker, timestamp, CSRCs and extension block, no padding; and ``unwrap_rtx`` gives back the
original sequence number and payload.
"""

from __future__ import annotations

import aiortc.rtp
from aiortc.rtp import RtpPacket, unwrap_rtx

from tests.fuzz import harness

# coverage of aiortc's parse leads the fuzzer to valid packets, the history's only input
harness.instrument_module(aiortc.rtp, __name__)

with harness.instrumented(__name__):
    from media_fleet.rtp.history import PacketHistory

RTX_PAYLOAD_TYPE = 97
RTX_SSRC = 0x5EC0DE
RTX_SEQUENCE = 0xFFFF  # the first retransmission wraps the RTX sequence number


def header_length(packet: bytes) -> int:
    """Fixed header, CSRCs and extension block, as RFC 3550 section 5.1 lays them out."""
    length = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:
        length += 4 + 4 * int.from_bytes(packet[length + 2 : length + 4], "big")
    return length


def check(data: bytes) -> None:
    try:
        original = RtpPacket.parse(data)
    except ValueError:
        return  # not a packet the node could have sent
    history = PacketHistory(RTX_PAYLOAD_TYPE, RTX_SSRC, RTX_SEQUENCE, size=16)
    history.add(original.sequence_number, data)
    rtx = history.rtx_for(original.sequence_number)
    assert rtx is not None

    parsed = RtpPacket.parse(rtx)
    assert (parsed.payload_type, parsed.ssrc, parsed.sequence_number) == (
        RTX_PAYLOAD_TYPE,
        RTX_SSRC,
        RTX_SEQUENCE,
    ), parsed
    assert (parsed.marker, parsed.timestamp, parsed.csrc) == (
        original.marker,
        original.timestamp,
        original.csrc,
    ), (original, parsed)
    assert parsed.padding_size == 0, parsed
    # the extension block travels unchanged (whatever its profile and ids)
    assert rtx[12 : header_length(rtx)] == data[12 : header_length(data)]
    unwrapped = unwrap_rtx(parsed, original.payload_type, original.ssrc)
    assert unwrapped.sequence_number == original.sequence_number
    assert unwrapped.payload == original.payload
    # the next retransmission takes the next RTX sequence number, wrapping at 16 bits
    again = history.rtx_for(original.sequence_number)
    assert again is not None and RtpPacket.parse(again).sequence_number == 0


if __name__ == "__main__":
    harness.main(check)
