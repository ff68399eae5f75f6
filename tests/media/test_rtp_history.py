"""PacketHistory: sent packets by sequence number, and RTX retransmissions (RFC 4588)."""

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket, unwrap_rtx

from media_fleet.rtp.history import PacketHistory


def extensions_map() -> HeaderExtensionsMap:
    extensions = HeaderExtensionsMap()
    extensions.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(
                    id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
                ),
                RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
            ]
        )
    )
    return extensions


def sent_packet(seq: int, payload: bytes = b"media", csrc: bool = False) -> bytes:
    packet = RtpPacket(
        payload_type=96,
        marker=1,
        sequence_number=seq,
        timestamp=123456,
        ssrc=0x1111,
        payload=payload,
    )
    packet.extensions.abs_send_time = 0x123456
    packet.extensions.mid = "3"
    if csrc:
        packet.csrc = [7, 8]
    return packet.serialize(extensions_map())


def test_get_by_sequence_number_and_eviction() -> None:
    history = PacketHistory(rtx_payload_type=97, rtx_ssrc=0x2222, size=512)
    for seq in range(65000, 65536):
        history.add(seq, sent_packet(seq))
    for seq in range(0, 100):  # across the wrap
        history.add(seq, sent_packet(seq))
    assert history.get(99) == sent_packet(99)
    assert history.get(65536 - 412) == sent_packet(65536 - 412)  # the 512th newest
    assert history.get(65536 - 413) is None  # overwritten by 99
    assert history.get(100) is None  # never sent


def test_size_must_be_a_power_of_two() -> None:
    with pytest.raises(ValueError):
        PacketHistory(rtx_payload_type=97, rtx_ssrc=1, size=500)


@pytest.mark.parametrize("csrc", [False, True])
def test_rtx_packet_format(csrc: bool) -> None:
    history = PacketHistory(rtx_payload_type=97, rtx_ssrc=0x2222, rtx_sequence=0xFFFF)
    history.add(4242, sent_packet(4242, b"original payload", csrc=csrc))

    first = history.rtx_for(4242)
    second = history.rtx_for(4242)
    assert first is not None and second is not None
    rtx = RtpPacket.parse(first, extensions_map())
    assert (rtx.payload_type, rtx.ssrc, rtx.sequence_number) == (97, 0x2222, 0xFFFF)
    assert (rtx.marker, rtx.timestamp) == (1, 123456)
    assert rtx.payload[:2] == (4242).to_bytes(2, "big")  # OSN first
    assert rtx.extensions.abs_send_time == 0x123456 and rtx.extensions.mid == "3"
    assert rtx.csrc == ([7, 8] if csrc else [])
    assert RtpPacket.parse(second).sequence_number == 0  # its own counter, wrapping

    original = unwrap_rtx(rtx, payload_type=96, ssrc=0x1111)
    assert (original.sequence_number, original.payload) == (4242, b"original payload")


def test_rtx_drops_padding() -> None:
    packet = RtpPacket(payload_type=96, sequence_number=5, payload=b"abc")
    packet.padding_size = 4
    history = PacketHistory(rtx_payload_type=97, rtx_ssrc=9)
    history.add(5, packet.serialize())
    rtx_bytes = history.rtx_for(5)
    assert rtx_bytes is not None
    rtx = RtpPacket.parse(rtx_bytes)
    assert rtx.padding_size == 0 and rtx.payload == b"\x00\x05abc"


def test_rtx_for_a_forgotten_packet_is_none() -> None:
    history = PacketHistory(rtx_payload_type=97, rtx_ssrc=9, size=16)
    history.add(1, sent_packet(1))
    history.add(17, sent_packet(17))
    assert history.rtx_for(1) is None
