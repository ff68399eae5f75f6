"""The VP8 RTP payload descriptor (RFC 7741 section 4.2), read and rewritten without decoding.

::

          0 1 2 3 4 5 6 7
         +-+-+-+-+-+-+-+-+
         |X|R|N|S|R| PID | (required)
         +-+-+-+-+-+-+-+-+
    X:   |I|L|T|K| RSV   | (optional)
         +-+-+-+-+-+-+-+-+
    I:   |M| PictureID   | (optional, 7 bits, or 15 bits when M=1)
         +-+-+-+-+-+-+-+-+
         |   PictureID   | (only when M=1)
         +-+-+-+-+-+-+-+-+
    L:   |   TL0PICIDX   | (optional)
         +-+-+-+-+-+-+-+-+
    T/K: |TID|Y| KEYIDX  | (optional)
         +-+-+-+-+-+-+-+-+

A forwarder that splices several sources into one stream must keep PictureID and TL0PICIDX
continuous, or the receiver sees jumps and asks for keyframes. :func:`rewrite_descriptor`
keeps the width each packet already has: a 15-bit PictureID stays 15 bits, and a 7-bit one
stays 7 bits and wraps modulo 128, because widening it would shift the payload and every
byte after it. aiortc and browsers send the 15-bit form.
"""

from typing import NamedTuple

PICTURE_ID_MASK_7 = 0x7F
PICTURE_ID_MASK_15 = 0x7FFF


class Vp8Descriptor(NamedTuple):
    """What the forwarder needs from one packet's descriptor, with byte offsets to rewrite."""

    start_of_partition: bool
    "S: the first packet of a VP8 partition."
    partition_id: int
    "PID: the partition index, 0 for the first partition of a frame."
    non_reference: bool
    "N: the frame can be dropped without affecting others."
    picture_id: int | None
    "PictureID, or None when absent."
    picture_id_bits: int
    "0 (absent), 7 or 15."
    picture_id_offset: int
    "Byte offset of the PictureID in the payload (meaningless when absent)."
    tl0picidx: int | None
    "TL0PICIDX, or None when absent."
    tl0picidx_offset: int
    "Byte offset of TL0PICIDX in the payload (meaningless when absent)."
    size: int
    "Length of the descriptor; the VP8 payload starts here."
    keyframe: bool
    "S=1, PID=0 and the VP8 payload header says key frame (low bit of its first byte 0)."


def parse_descriptor(payload: bytes) -> Vp8Descriptor:
    """Parse the descriptor at the start of a VP8 RTP payload.

    Reads only the descriptor bytes (and, for the start of a frame, the first payload byte).
    Raises ValueError when the payload is too short for the descriptor it announces.
    """
    length = len(payload)
    if length < 1:
        raise ValueError("VP8 descriptor is missing")
    first = payload[0]
    start = bool(first & 0x10)
    partition_id = first & 0x0F
    picture_id: int | None = None
    picture_id_bits = 0
    picture_id_offset = 0
    tl0picidx: int | None = None
    tl0picidx_offset = 0
    pos = 1

    if first & 0x80:
        if length < 2:
            raise ValueError("VP8 descriptor is truncated (X)")
        extension = payload[1]
        pos = 2
        if extension & 0x80:
            if length < pos + 1:
                raise ValueError("VP8 descriptor is truncated (I)")
            picture_id_offset = pos
            if payload[pos] & 0x80:
                if length < pos + 2:
                    raise ValueError("VP8 descriptor is truncated (M)")
                picture_id = ((payload[pos] & 0x7F) << 8) | payload[pos + 1]
                picture_id_bits = 15
                pos += 2
            else:
                picture_id = payload[pos]
                picture_id_bits = 7
                pos += 1
        if extension & 0x40:
            if length < pos + 1:
                raise ValueError("VP8 descriptor is truncated (L)")
            tl0picidx = payload[pos]
            tl0picidx_offset = pos
            pos += 1
        if extension & 0x30:
            pos += 1
            if length < pos:
                raise ValueError("VP8 descriptor is truncated (T/K)")

    keyframe = start and partition_id == 0 and length > pos and not payload[pos] & 0x01
    # positional: keyword construction of a NamedTuple costs about twice as much
    return Vp8Descriptor(
        start,
        partition_id,
        bool(first & 0x20),
        picture_id,
        picture_id_bits,
        picture_id_offset,
        tl0picidx,
        tl0picidx_offset,
        pos,
        keyframe,
    )


def rewrite_descriptor(
    payload: bytes,
    descriptor: Vp8Descriptor,
    picture_id: int | None,
    tl0picidx: int | None,
) -> bytes:
    """Return a copy of ``payload`` with PictureID and TL0PICIDX replaced.

    A field is written only if the packet has it and a new value is given; the width of the
    PictureID is kept (the value is masked to 7 or 15 bits). The input is never modified, so
    one incoming payload can feed several outgoing slots. Returns ``payload`` itself when
    there is nothing to change.
    """
    write_picture_id = picture_id is not None and descriptor.picture_id_bits != 0
    write_tl0 = tl0picidx is not None and descriptor.tl0picidx is not None
    if not write_picture_id and not write_tl0:
        return payload
    out = bytearray(payload)
    if write_picture_id:
        assert picture_id is not None
        pos = descriptor.picture_id_offset
        if descriptor.picture_id_bits == 15:
            out[pos] = 0x80 | ((picture_id >> 8) & 0x7F)
            out[pos + 1] = picture_id & 0xFF
        else:
            out[pos] = picture_id & PICTURE_ID_MASK_7
    if write_tl0:
        assert tl0picidx is not None
        out[descriptor.tl0picidx_offset] = tl0picidx & 0xFF
    return bytes(out)
