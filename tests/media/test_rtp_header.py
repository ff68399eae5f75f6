"""SlotHeader writes what aiortc's RtpPacket.serialize writes, byte for byte (the oracle)."""

import itertools

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from media_fleet.rtp.header import ExtensionIds, SlotHeader, extension_ids

MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
OTHER = "urn:ietf:params:rtp-hdrext:toffset"


def extensions_map(**ids: int) -> HeaderExtensionsMap:
    uris = {"mid": MID, "abs": ABS, "level": LEVEL, "other": OTHER}
    extensions = HeaderExtensionsMap()
    extensions.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=x_id, uri=uris[name])
                for name, x_id in ids.items()
            ]
        )
    )
    return extensions


def oracle(
    extensions: HeaderExtensionsMap,
    *,
    ssrc: int,
    mid: str | None,
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
        ssrc=ssrc,
        payload=payload,
    )
    packet.extensions.mid = mid
    packet.extensions.abs_send_time = abs_send_time
    packet.extensions.audio_level = audio_level
    return packet.serialize(extensions)


MAPS = [
    {"mid": 1, "abs": 3, "level": 2},  # aiortc's and Chromium's usual ids
    {"mid": 4, "abs": 2},  # a video session: no audio level
    {"abs": 3, "level": 1},  # no mid
    {"mid": 9},  # mid only
    {"level": 14},
    {},  # nothing negotiated: no extension block at all
    {"other": 5},  # only an extension the forwarder does not write
    {"mid": 1, "abs": 15, "level": 2},  # id above 14: the two-byte form (fallback)
    {"mid": 200, "abs": 3},
]


@pytest.mark.parametrize("ids", MAPS, ids=lambda ids: ",".join(f"{k}={v}" for k, v in ids.items()))
@pytest.mark.parametrize("mid", ["0", "12", "abcdefghijklmnop", None, "abcdefghijklmnopq", ""])
def test_writes_what_aiortc_serializes(ids: dict[str, int], mid: str | None) -> None:
    extensions = extensions_map(**ids)
    header = SlotHeader(0xDEADBEEF, mid, extensions, extension_ids(extensions))
    cases = itertools.product(
        [(96, False), (111, True), (0, True), (127, False)],
        [0, 1, 0xFFFF],
        [0, 0xFFFFFFFF, 0x12345678],
        [b"", b"\x90\x80\x12\x34payload", bytes(range(256)) * 5],
        [0, 0xFFFFFF, 0xABCDEF],
        [None, (True, 127), (False, 0), (True, 0), (False, 30)],
    )
    for (payload_type, marker), seq, ts, payload, abs_send_time, level in cases:
        got = header.write(payload_type, marker, seq, ts, payload, abs_send_time, level)
        want = oracle(
            extensions,
            ssrc=0xDEADBEEF,
            mid=mid,
            payload_type=payload_type,
            marker=marker,
            sequence_number=seq,
            timestamp=ts,
            payload=payload,
            abs_send_time=abs_send_time,
            audio_level=level,
        )
        assert got == want, (payload_type, marker, seq, ts, len(payload), abs_send_time, level)
        parsed = RtpPacket.parse(got, extensions)
        assert (parsed.sequence_number, parsed.timestamp, parsed.ssrc) == (seq, ts, 0xDEADBEEF)
        assert parsed.marker == marker and parsed.payload == payload


def test_extension_ids_are_read_from_the_map() -> None:
    ids = extension_ids(extensions_map(mid=4, abs=2, level=11, other=5))
    assert (ids.mid, ids.abs_send_time, ids.audio_level) == (4, 2, 11)
    ids = extension_ids(extensions_map(mid=1, abs=200))
    assert (ids.mid, ids.abs_send_time, ids.audio_level) == (1, 200, 0)
    ids = extension_ids(extensions_map())
    assert (ids.mid, ids.abs_send_time, ids.audio_level) == (0, 0, 0)


def test_uses_the_one_byte_form_without_aiortc() -> None:
    """The common case is one struct.pack, not the fallback serializer."""
    extensions = extensions_map(mid=1, abs=3, level=2)
    header = SlotHeader(5, "3", extensions, ExtensionIds(mid=1, abs_send_time=3, audio_level=2))
    header._serialize = None  # type: ignore[assignment,method-assign]
    data = header.write(111, True, 7, 8, b"opus", 0x10203, (True, 9))
    assert data == oracle(
        extensions,
        ssrc=5,
        mid="3",
        payload_type=111,
        marker=True,
        sequence_number=7,
        timestamp=8,
        payload=b"opus",
        abs_send_time=0x10203,
        audio_level=(True, 9),
    )
