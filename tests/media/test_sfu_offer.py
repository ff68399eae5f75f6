"""Publish offers: labels by m-line position, refusals, and the announced address."""

import aioice.ice
import pytest
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCRtpSender

from media_fleet.sfu.room import MeetingRoom
from media_fleet.sfu.sdp import announce_host, inspect_offer


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


async def offer(*media: tuple[str, str]) -> str:
    """An aiortc offer with these (kind, direction) m-lines, in order."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    try:
        for kind, direction in media:
            pc.addTransceiver(kind, direction=direction)
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()


async def test_labels_follow_the_m_line_order() -> None:
    sdp = await offer(
        ("audio", "sendonly"), ("video", "sendonly"), ("video", "inactive"), ("video", "sendonly")
    )
    tracks = inspect_offer(sdp)
    assert [(t.kind, t.label, t.sends) for t in tracks] == [
        ("audio", "audio", True),
        ("video", "camera", True),
        ("video", "camera-low", False),
        ("video", "screen", True),
    ]


@pytest.mark.parametrize(
    ("media", "reason"),
    [
        ((("audio", "sendonly"), ("audio", "sendonly")), "more than one audio"),
        ((("video", "sendonly"),) * 4, "more than three video"),
        ((("video", "recvonly"),), "sends no audio or video"),
    ],
)
async def test_unusable_offers_are_refused(media: tuple[tuple[str, str], ...], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        inspect_offer(await offer(*media))


async def test_offers_without_vp8_or_h264_or_the_audio_level_are_refused() -> None:
    sdp = await offer(("audio", "sendonly"))
    no_level = "\r\n".join(line for line in sdp.split("\r\n") if "ssrc-audio-level" not in line)
    with pytest.raises(ValueError, match="audio-level"):
        inspect_offer(no_level)

    # H.264 alone is accepted; a video m-line with neither VP8 nor H.264 is refused
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        transceiver = pc.addTransceiver("video", direction="sendonly")
        h264 = [c for c in RTCRtpSender.getCapabilities("video").codecs if "H264" in c.mimeType]
        transceiver.setCodecPreferences(h264)
        await pc.setLocalDescription(await pc.createOffer())
        h264_only = str(pc.localDescription.sdp)
    finally:
        await pc.close()
    assert [(t.label, t.sends) for t in inspect_offer(h264_only)] == [("camera", True)]
    no_video_codec = h264_only.replace("H264/90000", "AV1/90000")
    with pytest.raises(ValueError, match=r"neither VP8 nor H\.264"):
        inspect_offer(no_video_codec)


async def test_the_room_refuses_garbage_and_announces_its_address() -> None:
    room = MeetingRoom("m-offer", announced_host="203.0.113.7")
    try:
        with pytest.raises(ValueError):
            await room.publish("a", "this is not sdp")
        assert room.sessions() == 0

        answer = await room.publish("a", await offer(("audio", "sendonly"), ("video", "sendonly")))
        candidates = [line for line in answer.split("\r\n") if line.startswith("a=candidate:")]
        assert candidates and all(" 203.0.113.7 " in line for line in candidates)
        assert "127.0.0.1" not in answer
        assert room.sessions() == 1

        subscribe_offer = await room.subscribe("b")
        media = [line.split()[0] for line in subscribe_offer.split("\r\n") if line.startswith("m=")]
        assert media == ["m=video"] * 10 + ["m=audio"] * 3 + ["m=application"]
        assert subscribe_offer.count("a=sendonly") == 13
        assert "203.0.113.7" in subscribe_offer and "127.0.0.1" not in subscribe_offer
        assert room.sessions() == 2
    finally:
        await room.close()
    assert room.sessions() == 0


def test_announce_host_rewrites_candidates_and_connection_lines() -> None:
    sdp = (
        "v=0\r\nm=audio 5000 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 10.0.0.5\r\n"
        "a=candidate:abc 1 udp 2130706431 10.0.0.5 5000 typ host\r\n"
        "a=candidate:def 1 udp 2130706431 172.17.0.1 5001 typ host\r\n"
    )
    out = announce_host(sdp, "198.51.100.1")
    assert "c=IN IP4 198.51.100.1\r\n" in out
    assert "a=candidate:abc 1 udp 2130706431 198.51.100.1 5000 typ host\r\n" in out
    assert "a=candidate:def 1 udp 2130706431 198.51.100.1 5001 typ host\r\n" in out
    assert announce_host(sdp, None) == sdp
