"""Fuzz target: the RTP header parse the node runs on every packet a publisher sends.

The node does not parse RTP headers itself: aiortc's ``RtpPacket.parse`` does, on the
decrypted bytes, with the session's negotiated header-extension map, before any of our hooks
see the packet (``RTCDtlsTransport._handle_rtp_data``). That caller catches ValueError only;
anything else escapes the transport's receive loop and closes the publisher's connection.
The worker runs inside ``seams.refuse_malformed_packets()``, which turns the ``struct.error``
of aiortc 1.16.0's extension reading (an element of the wrong length) into ValueError, and
so does this target: :func:`check` enters the guard for each input (the corpus replay), a
fuzz run enters it once around the whole run, as the worker does.

Input: three bytes of extension ids (mid, abs-send-time, audio level; 0 = not negotiated:
DESIGN.md section 5 names those three as what aiortc negotiates), then the packet.
Contract: ``parse`` returns a packet or raises ValueError. Round trip: serializing the
parsed packet with the same map and parsing it again gives the same packet.
"""

from __future__ import annotations

import aiortc.rtp
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from media_fleet.rtc import seams
from tests.fuzz import harness

harness.instrument_module(aiortc.rtp, __name__)

MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
IDS_LENGTH = 3


def extensions_map(mid: int, abs_send_time: int, audio_level: int) -> HeaderExtensionsMap:
    negotiated = [
        RTCRtpHeaderExtensionParameters(id=x_id, uri=uri)
        for x_id, uri in ((mid, MID), (abs_send_time, ABS_SEND_TIME), (audio_level, AUDIO_LEVEL))
        if x_id
    ]
    extensions = HeaderExtensionsMap()
    extensions.configure(RTCRtpParameters(headerExtensions=negotiated))
    return extensions


def split(data: bytes) -> tuple[HeaderExtensionsMap, bytes] | None:
    if len(data) < IDS_LENGTH:
        return None
    ids = list(data[:IDS_LENGTH])
    # one id per extension (RFC 8285 section 6): a map that names two extensions by one id
    # is not a negotiation aiortc or a browser produces
    if len({x for x in ids if x}) != len([x for x in ids if x]):
        return None
    return extensions_map(*ids), data[IDS_LENGTH:]


def fields(packet: RtpPacket) -> tuple[object, ...]:
    x = packet.extensions
    return (
        packet.version,
        packet.marker,
        packet.payload_type,
        packet.sequence_number,
        packet.timestamp,
        packet.ssrc,
        packet.csrc,
        packet.padding_size,
        packet.payload,
        x.mid,
        x.abs_send_time,
        x.audio_level,
    )


def check(data: bytes) -> None:
    """One input, inside the node's guard."""
    with seams.refuse_malformed_packets():
        check_guarded(data)


def check_guarded(data: bytes) -> None:
    """One input, for a caller already inside ``seams.refuse_malformed_packets()``."""
    split_input = split(data)
    if split_input is None:
        return
    extensions, raw = split_input
    try:
        packet = RtpPacket.parse(raw, extensions)
    except ValueError:  # all that RTCDtlsTransport._handle_rtp_data catches
        return
    again = RtpPacket.parse(packet.serialize(extensions), extensions)
    assert fields(again) == fields(packet), (fields(packet), fields(again))


if __name__ == "__main__":
    with seams.refuse_malformed_packets():  # once, as the worker enters it
        harness.main(check_guarded)
