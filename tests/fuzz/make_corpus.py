"""Write the seed corpora under tests/fuzz/corpus/<target>/ from real packets and bodies.

    .venv/bin/python -m tests.fuzz.make_corpus

Real means made the way the node meets them: VP8 and H.264 payloads from aiortc's own
encoders (what a publisher sends), RTP packets serialized by aiortc with the extension maps
the node negotiates, the RTCP that aiortc and the node send (SR+SDES, RR, NACK, PLI, FIR,
REMB, BYE), and control bodies with a real media token and a real aiortc SDP offer. A few
hand-built edge cases sit beside them (7-bit PictureID, STAP-A, padding, two-byte
extensions, the malformed bodies of issue 9). Files are named after what they hold. Besides
the seeds it writes the reproducers of aiortc's own parser defects (``crash-aiortc-*``, see
README.md); it only adds or overwrites those files, so crash reproducers added by hand stay.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpByePacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
    wrap_rtx,
)
from av import VideoFrame
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from media_fleet.rtp.header import SlotHeader, extension_ids
from tests.fuzz.fuzz_rtp_packet import extensions_map
from tests.fuzz.fuzz_slot_header import Fields
from townhall.auth.keys import SigningKey
from townhall.media.tokens import MediaTokenService

CORPUS = Path(__file__).parent / "corpus"
# aiortc's and Chromium's usual ids: mid 1, abs-send-time 2 (video) / audio level 2 (audio)
VIDEO_IDS = (1, 2, 0)
AUDIO_IDS = (1, 0, 2)


def frames(width: int = 160, height: int = 120, count: int = 3) -> Iterator[VideoFrame]:
    """Frames with some texture, so the encoders emit more than one packet per frame."""
    for index in range(count):
        frame = VideoFrame(width=width, height=height, format="yuv420p")
        for plane_index, plane in enumerate(frame.planes):
            row = bytes((x * 7 + index * 31 + plane_index * 50) & 0xFF for x in range(plane.width))
            plane.update(
                row * (plane.buffer_size // len(row)) + b"\x80" * (plane.buffer_size % len(row))
            )
        frame.pts = index * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        yield frame


def vp8_payloads() -> dict[str, bytes]:
    encoder = Vp8Encoder()
    seeds: dict[str, bytes] = {}
    for index, frame in enumerate(frames(640, 480)):
        packets, _ = encoder.encode(frame, force_keyframe=index == 0)
        kind = "key" if index == 0 else "delta"
        seeds[f"aiortc-{kind}-{index}-first"] = packets[0][:48]
        if len(packets) > 1:
            seeds[f"aiortc-{kind}-{index}-next"] = packets[1][:48]
    # hand-built: the descriptor forms aiortc does not send
    seeds["no-extension-start"] = bytes([0x10, 0x00, 0x9D, 0x01, 0x2A])
    seeds["pid7-tl0-tk"] = bytes([0x90, 0xE0, 0x2A, 0x11, 0x40, 0x00])
    seeds["pid15-tl0-tk-nonref"] = bytes([0xB0, 0xF0, 0x81, 0x23, 0x07, 0x20, 0x01])
    seeds["truncated-m"] = bytes([0x90, 0x80, 0x80])
    return seeds


def h264_payloads() -> dict[str, bytes]:
    encoder = H264Encoder()
    seeds: dict[str, bytes] = {}
    for index, frame in enumerate(frames(320, 240)):
        packets, _ = encoder.encode(frame, force_keyframe=index == 0)
        kind = "key" if index == 0 else "delta"
        for number, packet in enumerate(packets[:3]):
            seeds[f"aiortc-{kind}-{index}-{number}-type{packet[0] & 0x1F}"] = packet[:64]
    seeds["stap-a-sps-pps-idr"] = bytes(
        [0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xCE, 0, 2, 0x65, 0x88]
    )
    seeds["stap-a-truncated"] = bytes([0x78, 0, 9, 0x66, 0x01])
    seeds["fu-a-idr-start"] = bytes([0x7C, 0x85, 0x88, 0x84])
    seeds["fu-a-idr-middle"] = bytes([0x7C, 0x05, 0x88, 0x84])
    return seeds


def rtp_packet(
    ids: tuple[int, int, int],
    payload: bytes,
    *,
    payload_type: int = 96,
    mid: str | None = "1",
    abs_send_time: int | None = 0x12345,
    audio_level: tuple[bool, int] | None = None,
    csrc: list[int] | None = None,
    padding: int = 0,
) -> bytes:
    packet = RtpPacket(
        payload_type=payload_type, marker=1, sequence_number=4660, timestamp=90000, ssrc=0xC0FFEE
    )
    packet.payload = payload
    packet.extensions.mid = mid
    packet.extensions.abs_send_time = abs_send_time
    packet.extensions.audio_level = audio_level
    packet.csrc = csrc or []
    packet.padding_size = padding
    return packet.serialize(extensions_map(*ids))


def rtp_packets() -> dict[str, bytes]:
    vp8 = vp8_payloads()["aiortc-key-0-first"]
    opus = bytes([0x78, 0x0B, 0xE4, 0xC1, 0x36, 0xEC, 0xC5, 0x80])
    cases = {
        "video-vp8": (VIDEO_IDS, rtp_packet(VIDEO_IDS, vp8)),
        "audio-opus-level": (
            AUDIO_IDS,
            rtp_packet(
                AUDIO_IDS, opus, payload_type=111, abs_send_time=None, audio_level=(True, 9)
            ),
        ),
        "video-csrc-padding": (VIDEO_IDS, rtp_packet(VIDEO_IDS, vp8, csrc=[1, 2], padding=4)),
        "two-byte-extensions": ((1, 15, 0), rtp_packet((1, 15, 0), vp8)),
        "long-mid-two-byte": (VIDEO_IDS, rtp_packet(VIDEO_IDS, vp8, mid="m" * 20)),
        "all-three": ((3, 4, 5), rtp_packet((3, 4, 5), opus, audio_level=(False, 127))),
        "no-extensions": ((0, 0, 0), rtp_packet((0, 0, 0), opus)),
    }
    rtx = RtpPacket.parse(cases["video-vp8"][1], extensions_map(*VIDEO_IDS))
    cases["rtx"] = (
        VIDEO_IDS,
        wrap_rtx(rtx, payload_type=97, sequence_number=1, ssrc=0xBEEF).serialize(
            extensions_map(*VIDEO_IDS)
        ),
    )
    return {name: bytes(ids) + data for name, (ids, data) in cases.items()}


def padded(rtcp: bytes, padding: int) -> bytes:
    """One RTCP packet with the padding bit and ``padding`` bytes, the last one their count."""
    length = (len(rtcp) + padding) // 4 - 1
    header = bytes([rtcp[0] | 0x20, rtcp[1]]) + length.to_bytes(2, "big")
    return header + rtcp[4:] + bytes(padding - 1) + bytes([padding])


def rtcp_packets() -> dict[str, bytes]:
    report = RtcpReceiverInfo(
        ssrc=0xC0FFEE, fraction_lost=3, packets_lost=-2, highest_sequence=70000, jitter=12,
        lsr=0x1234, dlsr=0x10,
    )  # fmt: skip
    sr = RtcpSrPacket(
        ssrc=0xC0FFEE,
        sender_info=RtcpSenderInfo(
            ntp_timestamp=0xE1234567_89ABCDEF,
            rtp_timestamp=90000,
            packet_count=10,
            octet_count=9000,
        ),
    )
    sdes = RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=0xC0FFEE, items=[(1, b"{cname-1234}")])])
    return {
        "sr-sdes-compound": bytes(sr) + bytes(sdes),
        "sr-with-report": bytes(RtcpSrPacket(ssrc=1, sender_info=sr.sender_info, reports=[report])),
        "rr": bytes(RtcpRrPacket(ssrc=1, reports=[report])),
        "rr-empty": bytes(RtcpRrPacket(ssrc=1)),
        "nack": bytes(
            RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=0xC0FFEE, lost=[5, 6, 9, 40])
        ),
        "nack-wrap": bytes(
            RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=2, lost=[65534, 65535])
        ),
        "pli": bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=0xC0FFEE)),
        "pli-padded": padded(bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=2)), 4),
        "fir": bytes(
            RtcpPsfbPacket(
                fmt=RTCP_PSFB_FIR, ssrc=1, media_ssrc=0, fci=b"\x00\xc0\xff\xee\x01\0\0\0"
            )
        ),
        "remb": bytes(
            RtcpPsfbPacket(
                fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(1_500_000, [0xC0FFEE, 7])
            )
        ),
        "bye": bytes(RtcpByePacket(sources=[0xC0FFEE])),
        "rr-nack-pli-compound": bytes(RtcpRrPacket(ssrc=1, reports=[report]))
        + bytes(RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=2, lost=[100]))
        + bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=2)),
    }


def sent_packets() -> dict[str, bytes]:
    """What the node's slots send (SlotHeader), plus RTP forms the history must also carry."""
    video, audio = extensions_map(*VIDEO_IDS), extensions_map(*AUDIO_IDS)
    vp8 = vp8_payloads()["aiortc-key-0-first"]
    camera = SlotHeader(0xA1, "1", video, extension_ids(video))
    microphone = SlotHeader(0xA2, "0", audio, extension_ids(audio))
    return {
        "slot-video": camera.write(96, True, 7, 90000, vp8, 0xABCDE),
        "slot-audio": microphone.write(111, False, 65535, 48000, b"\x78\x0b\xe4", 0, (True, 30)),
        "slot-padding-only": camera.write(96, False, 8, 90000, b"", 0x1),
        "csrc-padding": rtp_packet(VIDEO_IDS, vp8, csrc=[9], padding=3),
        "two-byte-extensions": rtp_packet((1, 15, 0), vp8),
        "other-profile": bytes([0x90, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0x12, 0x34, 0, 1])
        + b"\xde\xad\xbe\xef"
        + b"payload",
    }


def slot_header_fields() -> dict[str, bytes]:
    base = Fields((1, 2, 0), "1", 96, True, 7, 90000, 0xA1, 0xABCDE, None, b"\x90\x80\x80\x01")
    return {
        "video": base.encode(),
        "audio-level": base._replace(
            ids=(1, 0, 2), mid="0", payload_type=111, audio_level=(True, 9)
        ).encode(),
        "no-mid": base._replace(mid=None).encode(),
        "empty-mid": base._replace(mid="").encode(),
        "mid-17-bytes": base._replace(mid="abcdefghijklmnopq").encode(),
        "mid-latin1": base._replace(mid="é1").encode(),
        "id-above-14": base._replace(ids=(1, 15, 3), audio_level=(False, 127)).encode(),
        "nothing-negotiated": base._replace(ids=(0, 0, 0)).encode(),
        "wrap": base._replace(
            sequence_number=0xFFFF, timestamp=0xFFFFFFFF, ssrc=0xFFFFFFFF
        ).encode(),
    }


async def sdp_offer() -> str:
    """A real aiortc offer: audio and two video m-lines, as a publisher sends (no network:
    no ICE servers, so gathering only lists this host's addresses)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        for kind in ("audio", "video", "video"):
            pc.addTransceiver(kind, direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
    finally:
        await pc.close()
    # candidates and the default address name this machine: keep the committed seed neutral
    lines = []
    for line in sdp.split("\r\n"):
        if line.startswith("a=candidate:"):
            continue
        if line.startswith("c=IN IP4 "):
            line = "c=IN IP4 0.0.0.0"
        elif line.startswith("m="):
            kind, _port, rest = line.split(" ", 2)
            line = f"{kind} 9 {rest}"
        lines.append(line)
    return "\r\n".join(lines)


def wire_bodies() -> dict[str, bytes]:
    key = SigningKey.from_private_key(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
    token, _ = MediaTokenService(key, lambda: 1_800_000_000.0).issue(
        "m-1", "p-1", "node-1", may_publish=True
    )
    offer = asyncio.run(sdp_offer())

    def body(document: object) -> bytes:
        return json.dumps(document).encode()

    return {
        "publish": body({"token": token, "sdp": offer}),
        "subscribe": body({"token": token}),
        "subscribe-answer": body({"token": token, "sdp": "v=0\r\n"}),
        "leave": body({"token": token}),
        "token-not-jwt": body({"token": "not.a.jwt"}),
        "token-number": body({"token": 42}),
        "array": b"[1, 2]",
        "string": b'"token"',
        "not-json": b"{not json",
        "not-utf8": b"\xff\xfe",
        "utf16-object": '{"token": "a"}'.encode("utf-16"),
        "utf8-bom": b'\xef\xbb\xbf{"token": "a"}',
        "lone-surrogate": b'{"token": "\\ud800", "sdp": "v=0"}',
        "surrogate-pair": b'{"token": "\\ud83d\\ude00"}',
        "surrogate-key": b'{"\\udfff": 1}',
        "nested-3000": b"[" * 3000,
        "nested-objects": b'{"a":' * 1200 + b"1" + b"}" * 1200,
        "long-integer": b'{"token": ' + b"9" * 4400 + b"}",
        "nan": b'{"token": NaN}',
    }


def aiortc_crashes() -> dict[str, dict[str, bytes]]:
    """Reproducers of aiortc 1.16.0's parser defects, as the fuzzers first found them, by
    target: ``struct.error`` from aiortc, a ValueError inside ``seams.refuse_malformed_packets``
    (test_corpus_replay.py checks both)."""
    # abs-send-time (id 2) in a one-byte element of length 1 instead of 3
    short_abs = bytes([0x90, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0xBE, 0xDE, 0, 1, 0x20, 0x55, 0, 0])
    # audio level (id 2) in a two-byte-form element of length 0
    empty_level = bytes([0x90, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0x10, 0x00, 0, 1, 2, 0, 0, 0])
    # a REMB that names 5 SSRCs and carries none
    remb = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=b"REMB\x05\x00\x10\x00")
    return {
        "rtp_packet": {
            "abs-send-time-1-byte": bytes(VIDEO_IDS) + short_abs,
            "audio-level-0-bytes": bytes(AUDIO_IDS) + empty_level + b"opus",
        },
        "rtcp": {"remb-ssrc-count-past-fci": bytes(remb)},
    }


def write(target: str, seeds: dict[str, bytes], prefix: str = "seed-") -> None:
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        (directory / f"{prefix}{name}").write_bytes(data)
    print(f"{target}: {len(seeds)} {prefix}files", file=sys.stderr)


def main() -> None:
    write("vp8", vp8_payloads())
    write("h264", h264_payloads())
    write("rtp_packet", rtp_packets())
    write("rtcp", rtcp_packets())
    write("rtx_history", sent_packets())
    write("slot_header", slot_header_fields())
    write("wire", wire_bodies())
    for target, reproducers in aiortc_crashes().items():
        write(target, reproducers, prefix="crash-aiortc-")


if __name__ == "__main__":
    main()
