"""The RTP header of one outgoing slot, written in one ``struct.pack`` per packet.

A forwarded packet's header differs from slot to slot in a handful of fields: SSRC, payload
type, sequence number, timestamp, and the header-extension ids, which each subscriber's
session negotiates on its own. Everything else is fixed for the slot. So instead of building
an :class:`aiortc.rtp.RtpPacket` and serializing it (a fresh object, an extensions object, a
list of extension tuples and several byte concatenations per packet), a slot precomputes,
once, a :class:`struct.Struct` whose layout is its whole header: the fixed part, the
one-byte extension block (RFC 8285) with the mid as a constant, abs-send-time and the
optional audio level, and the padding to a 32-bit boundary. Writing a packet is then one C
call plus the payload concatenation.

The output is byte for byte what ``RtpPacket.serialize`` writes for the same fields and the
same extension map (``tests/media/test_rtp_header.py`` checks it against aiortc as the
oracle): extensions in aiortc's order (mid, abs-send-time, audio level), no CSRC, no padding.
When the one-byte form cannot hold the extensions (an id above 14 or a mid longer than 16
bytes, or an empty mid), :meth:`SlotHeader.write` falls back to aiortc's own serializer.
"""

import struct

from aiortc.rtp import HeaderExtensionsMap, RtpPacket

_ONE_BYTE_PROFILE = 0xBEDE
_MAX_ONE_BYTE_ID = 14
_MAX_ONE_BYTE_LENGTH = 16


class ExtensionIds:
    """The negotiated ids of the extensions a forwarded packet carries (0: not negotiated)."""

    __slots__ = ("abs_send_time", "audio_level", "mid")

    def __init__(self, mid: int = 0, abs_send_time: int = 0, audio_level: int = 0) -> None:
        self.mid = mid
        self.abs_send_time = abs_send_time
        self.audio_level = audio_level


def extension_ids(extensions_map: HeaderExtensionsMap) -> ExtensionIds:
    """Read the ids of mid, abs-send-time and audio level from an aiortc extension map.

    The map keeps its ids in a private field; rather than reach into it, this asks the map
    itself: it serializes one probe packet per extension and reads the id back.
    """
    ids = ExtensionIds()
    probes = (("mid", "0"), ("abs_send_time", 0), ("audio_level", (False, 0)))
    for name, value in probes:
        probe = RtpPacket()
        setattr(probe.extensions, name, value)
        data = probe.serialize(extensions_map)
        if data[0] & 0x10:  # an extension block: its first element names the id
            profile = (data[12] << 8) | data[13]
            setattr(ids, name, data[16] >> 4 if profile == _ONE_BYTE_PROFILE else data[16])
    return ids


class SlotHeader:
    """Writes the RTP packets of one slot: its SSRC and extension ids, and a given mid.

    :param ssrc: the slot's SSRC.
    :param mid: the slot's mid (None: not written).
    :param extensions_map: the slot transport's extension map (the fallback serializer).
    :param ids: the negotiated extension ids of that map (:func:`extension_ids`).
    """

    def __init__(
        self, ssrc: int, mid: str | None, extensions_map: HeaderExtensionsMap, ids: ExtensionIds
    ) -> None:
        self.ssrc = ssrc
        self.mid = mid
        self._map = extensions_map
        mid_bytes = mid.encode("utf8") if mid is not None and ids.mid else b""
        self._one_byte = (
            max(ids.mid if mid_bytes else 0, ids.abs_send_time, ids.audio_level) <= _MAX_ONE_BYTE_ID
            and len(mid_bytes) <= _MAX_ONE_BYTE_LENGTH
            and (mid is None or not ids.mid or len(mid_bytes) > 0)
        )
        mid_element = b""
        if mid_bytes and self._one_byte:
            mid_element = bytes([(ids.mid << 4) | (len(mid_bytes) - 1)]) + mid_bytes
        self._has_abs = ids.abs_send_time != 0
        # abs-send-time as one 32-bit word: its element byte (id, length 3), then 24 bits
        self._abs_element = ((ids.abs_send_time << 4) | 2) << 24
        # the audio level as one 16-bit word: its element byte (id, length 1), then V|level
        self._level_element = (ids.audio_level << 4) << 8
        self._without_level = self._layout(mid_element, with_level=False)
        self._with_level = self._layout(mid_element, with_level=ids.audio_level != 0)

    def _layout(self, mid_element: bytes, *, with_level: bool) -> tuple[struct.Struct, int, bytes]:
        """The header's Struct, its first byte, and its constant extension prefix.

        The prefix is the extension block's profile and length, then the mid element; the
        variable words (abs-send-time, audio level) and the zero padding follow it.
        """
        size = len(mid_element) + (4 if self._has_abs else 0) + (2 if with_level else 0)
        if not size:
            return struct.Struct("!BBHLL0s"), 0x80, b""
        padding = -size % 4
        prefix = struct.pack("!HH", _ONE_BYTE_PROFILE, (size + padding) // 4) + mid_element
        fmt = f"!BBHLL{len(prefix)}s" + ("L" if self._has_abs else "") + ("H" if with_level else "")
        return struct.Struct(fmt + f"{padding}x"), 0x90, prefix

    def write(
        self,
        payload_type: int,
        marker: bool,
        sequence_number: int,
        timestamp: int,
        payload: bytes,
        abs_send_time: int,
        audio_level: tuple[bool, int] | None = None,
    ) -> bytes:
        """Return the serialized RTP packet (before SRTP)."""
        if not self._one_byte:
            return self._serialize(
                payload_type, marker, sequence_number, timestamp, payload, abs_send_time,
                audio_level,
            )  # fmt: skip
        second = (0x80 | payload_type) if marker else payload_type
        if audio_level is not None and self._level_element:
            layout, first, prefix = self._with_level
            level = self._level_element | (0x80 if audio_level[0] else 0) | (audio_level[1] & 0x7F)
            if self._has_abs:
                abs_word = self._abs_element | (abs_send_time & 0xFFFFFF)
                header = layout.pack(
                    first, second, sequence_number, timestamp, self.ssrc, prefix, abs_word, level
                )
            else:
                header = layout.pack(
                    first, second, sequence_number, timestamp, self.ssrc, prefix, level
                )
        else:
            layout, first, prefix = self._without_level
            if self._has_abs:
                abs_word = self._abs_element | (abs_send_time & 0xFFFFFF)
                header = layout.pack(
                    first, second, sequence_number, timestamp, self.ssrc, prefix, abs_word
                )
            else:
                header = layout.pack(first, second, sequence_number, timestamp, self.ssrc, prefix)
        return header + payload

    def _serialize(
        self,
        payload_type: int,
        marker: bool,
        sequence_number: int,
        timestamp: int,
        payload: bytes,
        abs_send_time: int,
        audio_level: tuple[bool, int] | None,
    ) -> bytes:
        packet = RtpPacket(
            payload_type=payload_type,
            marker=int(marker),
            sequence_number=sequence_number,
            timestamp=timestamp,
            ssrc=self.ssrc,
            payload=payload,
        )
        packet.extensions.mid = self.mid
        packet.extensions.abs_send_time = abs_send_time
        packet.extensions.audio_level = audio_level
        return packet.serialize(self._map)
