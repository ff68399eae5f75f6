"""Sent packets of one slot, kept to answer NACKs with RTX retransmissions (RFC 4588).

The stock aiortc sender keeps a history of what *it* sent, which for a forwarding slot is
nothing; so each slot keeps its own. Packets are stored as the serialized bytes that were
sent (before SRTP), in a ring indexed by the low bits of the outgoing sequence number: insert
and lookup are O(1) and store nothing but a reference to those bytes.

An RTX packet (RFC 4588 section 4) copies the original header, but carries the RTX payload
type, the RTX SSRC and its own sequence number; its payload is the original sequence number
(OSN, two bytes) followed by the original payload. Extensions and the marker bit are kept;
padding is dropped.
"""

import struct

from .seqnum import SEQ_MASK

DEFAULT_HISTORY_SIZE = 512

_RTP_HEADER_LENGTH = 12
_pack_sequence = struct.Struct("!H").pack_into
_pack_ssrc = struct.Struct("!L").pack_into


class PacketHistory:
    """The last ``size`` packets sent on one slot, by outgoing sequence number.

    :param rtx_payload_type: the RTX payload type negotiated for the slot (``apt`` = its
        media payload type).
    :param rtx_ssrc: the slot's RTX SSRC.
    :param rtx_sequence: the first RTX sequence number to use.
    :param size: how many packets to keep; a power of two.
    """

    def __init__(
        self,
        rtx_payload_type: int,
        rtx_ssrc: int,
        rtx_sequence: int = 0,
        size: int = DEFAULT_HISTORY_SIZE,
    ) -> None:
        if size <= 0 or size & (size - 1):
            raise ValueError("history size must be a power of two")
        self.rtx_payload_type = rtx_payload_type
        self.rtx_ssrc = rtx_ssrc
        self._mask = size - 1
        self._sequences = [-1] * size
        self._packets: list[bytes | None] = [None] * size
        self._rtx_sequence = rtx_sequence & SEQ_MASK

    def add(self, sequence_number: int, packet: bytes) -> None:
        """Remember a serialized RTP packet that was sent with this sequence number."""
        index = sequence_number & self._mask
        self._sequences[index] = sequence_number
        self._packets[index] = packet

    def get(self, sequence_number: int) -> bytes | None:
        """Return the packet sent with this sequence number, if it is still kept."""
        index = sequence_number & self._mask
        if self._sequences[index] != sequence_number:
            return None
        return self._packets[index]

    def rtx_for(self, sequence_number: int) -> bytes | None:
        """Build the RTX packet that retransmits ``sequence_number``, or None if forgotten.

        Each call uses the next RTX sequence number.
        """
        packet = self.get(sequence_number)
        if packet is None:
            return None
        first = packet[0]
        header_length = _RTP_HEADER_LENGTH + 4 * (first & 0x0F)
        if first & 0x10:
            words = (packet[header_length + 2] << 8) | packet[header_length + 3]
            header_length += 4 + 4 * words
        end = len(packet) - packet[-1] if first & 0x20 else len(packet)

        header = bytearray(packet[:header_length])
        header[0] = first & ~0x20
        header[1] = (packet[1] & 0x80) | self.rtx_payload_type
        _pack_sequence(header, 2, self._rtx_sequence)
        _pack_ssrc(header, 8, self.rtx_ssrc)
        self._rtx_sequence = (self._rtx_sequence + 1) & SEQ_MASK
        return b"".join((header, packet[2:4], packet[header_length:end]))
