"""H.264 keyframe detection on RTP payloads (RFC 6184), without copying or decoding.

The forwarder needs one thing from an H.264 packet: does a keyframe start here, so that a
slot may switch to this source. The first byte of every RTP payload is a NAL unit header
(``F|NRI|Type``); the type tells the packetization:

- 1 to 23, **single NAL unit**: the packet carries one NAL unit. IDR (5) is a keyframe; an SPS
  (7) or PPS (8) comes at the start of an access unit and precedes an IDR (encoders send
  them with every keyframe), so it counts as the start of one;
- 24, **STAP-A**: NAL units aggregated as (16-bit size, NAL unit) pairs; a keyframe if any of
  them is an IDR or an SPS;
- 28, **FU-A**: one NAL unit in fragments; the FU header (second byte) has the start bit
  (0x80) and the original type; a keyframe if the first fragment of an IDR or an SPS.

Other types (STAP-B, MTAP, FU-B: interleaved mode, which WebRTC does not use) are never
keyframes. Only the headers are read; the payload is not copied.
"""

NAL_TYPE_MASK = 0x1F
NAL_IDR = 5
NAL_SPS = 7
NAL_PPS = 8
NAL_STAP_A = 24
NAL_FU_A = 28

_KEYFRAME_START = frozenset({NAL_IDR, NAL_SPS, NAL_PPS})
_KEYFRAME_CONTENT = frozenset({NAL_IDR, NAL_SPS})


def is_keyframe(payload: bytes) -> bool:
    """True if this H.264 RTP payload starts (or is part of the start of) a keyframe.

    A truncated STAP-A is read as far as it goes; an empty payload (padding) is not a
    keyframe.
    """
    length = len(payload)
    if length < 1:
        return False
    nal_type = payload[0] & NAL_TYPE_MASK
    if nal_type < NAL_STAP_A:
        return nal_type in _KEYFRAME_START
    if nal_type == NAL_FU_A:
        if length < 2:
            return False
        header = payload[1]
        return bool(header & 0x80) and (header & NAL_TYPE_MASK) in _KEYFRAME_CONTENT
    if nal_type == NAL_STAP_A:
        pos = 1
        while pos + 2 < length:  # a size and at least the NAL header byte
            size = (payload[pos] << 8) | payload[pos + 1]
            if size == 0:
                return False
            if (payload[pos + 2] & NAL_TYPE_MASK) in _KEYFRAME_CONTENT:
                return True
            pos += 2 + size
        return False
    return False
