"""Defects of aiortc 1.16.0's packet parsers that the fuzz targets found, recognised exactly.

Both end in ``struct.error``, which is not a ValueError, the only error ``RTCDtlsTransport``
catches around these parsers: the exception ends the transport's receive loop, so one such
packet from a peer closes that peer's connection (only its own: SRTP authenticates every
packet, so no third party can send one). The fix belongs in aiortc, or in a guard in
``media_fleet/rtc/seams.py`` (see tests/fuzz/README.md). Until then the targets let exactly
these cases through and fail on any other exception; the corpus replay test checks that each
committed reproducer (``known-aiortc-*``) still shows its defect, so an aiortc upgrade that
fixes one says so.

- :func:`extension_of_wrong_length`: ``HeaderExtensionsMap.get`` unpacks abs-send-time
  (3 bytes) and the audio level (1 byte) with ``struct.unpack`` whatever the element's length.
- :func:`remb_ssrcs_past_fci`: ``unpack_remb_fci`` checks the FCI is 8 bytes, then reads as
  many SSRCs as the count byte says, past the end.
"""

from __future__ import annotations

from aiortc.rtp import unpack_header_extensions

EXPECTED_LENGTHS = ("abs_send_time", 3), ("audio_level", 1)


def extension_of_wrong_length(packet: bytes, abs_send_time_id: int, audio_level_id: int) -> bool:
    """True if the packet (already accepted up to its extensions) carries an element with a
    negotiated abs-send-time or audio-level id but another length than that extension's."""
    if len(packet) < 12 or not packet[0] & 0x10:
        return False
    pos = 12 + 4 * (packet[0] & 0x0F)
    if len(packet) < pos + 4:
        return False
    profile = int.from_bytes(packet[pos : pos + 2], "big")
    length = 4 * int.from_bytes(packet[pos + 2 : pos + 4], "big")
    try:
        elements = unpack_header_extensions(profile, packet[pos + 4 : pos + 4 + length])
    except ValueError:
        return False
    wanted = {abs_send_time_id: 3, audio_level_id: 1}
    wanted.pop(0, None)  # 0: not negotiated
    return any(x_id in wanted and len(value) != wanted[x_id] for x_id, value in elements)


def remb_ssrcs_past_fci(fci: bytes) -> bool:
    """True for a REMB FCI whose SSRC count runs past its end."""
    return len(fci) >= 8 and fci[:4] == b"REMB" and 8 + 4 * fci[4] > len(fci)
