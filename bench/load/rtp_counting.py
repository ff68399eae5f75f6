"""Counting what a subscriber receives from the RTP header alone, before aiortc sees it.

SRTP leaves the RTP header in clear, so sequence number, SSRC, payload type and marker are read
from the protected datagram: RTP is never unprotected (except a stamped frame's last packet),
parsed, buffered or decoded. A subscriber then costs a few µs per packet, and no NACK is ever
sent, so no retransmission hides a loss. RTCP is still unprotected and handled as usual.

Two ways in:

- :func:`install_raw_rtp_counter`: every DTLS transport of the process (patched on the class),
  whatever the join path of the target; the load client's counter.
- :func:`count_raw_rtp`: one subscribe connection, hooked between its local answer and DTLS;
  the Janus self-check's counter.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.load.clip import STAMP

if TYPE_CHECKING:
    from aiortc import RTCPeerConnection


@dataclass
class SlotCounter:
    """One subscriber slot (its SSRC): packets received and the extended highest sequence."""

    received: int = 0
    highest: int | None = None
    frames: int = 0

    def add(self, sequence: int) -> None:
        self.received += 1
        if self.highest is None:
            self.highest = sequence
            return
        delta = (sequence - self.highest) & 0xFFFF
        if delta < 0x8000:  # newer (a late packet counts as received, not as a new high)
            self.highest += delta


@dataclass
class RawRtpCounts:
    """What :func:`install_raw_rtp_counter` counts in one process."""

    counters: dict[str, SlotCounter] = field(default_factory=dict)
    "``<transport number>/<ssrc>/<kind>`` -> its counter."
    e2e_us: list[float] = field(default_factory=list)
    "Send stamp to arrival, per stamped video frame (µs)."
    transports: int = 0


def install_raw_rtp_counter(counts: RawRtpCounts, *, stamps: bool = True) -> None:
    """Every DTLS transport of this process counts its RTP instead of handing it to aiortc.

    The payload types of a transport are learnt when aiortc registers its receivers (the
    negotiated codecs: VP8 is video, Opus audio, anything else such as RTX is ignored).
    Only the video marker packets are SRTP-unprotected, for the stamp; the rest is counted
    from the header. ``stamps=False`` reads no stamp (the naive relay re-encodes, so its
    frames carry none) and unprotects nothing.
    """
    from aiortc.rtcdtlstransport import RTCDtlsTransport

    register = RTCDtlsTransport._register_rtp_receiver
    setup_srtp = RTCDtlsTransport._setup_srtp

    def kinds_of(transport: Any) -> dict[int, str]:
        kinds: dict[int, str] | None = getattr(transport, "_bench_kinds", None)
        if kinds is None:
            kinds = {}
            setattr(transport, "_bench_kinds", kinds)  # noqa: B010
            setattr(transport, "_bench_stamped", set())  # noqa: B010
            counts.transports += 1
            setattr(transport, "_bench_number", counts.transports)  # noqa: B010
        return kinds

    def register_rtp_receiver(self: Any, receiver: Any, parameters: Any) -> None:
        kinds = kinds_of(self)
        for codec in parameters.codecs:
            mime = codec.mimeType.lower()
            if mime in ("video/vp8", "video/h264"):
                kinds[codec.payloadType] = "video"
                if stamps:  # marker bit + a video payload type: a frame's last packet
                    self._bench_stamped.add(0x80 | codec.payloadType)
            elif mime == "audio/opus":
                kinds[codec.payloadType] = "audio"
        register(self, receiver, parameters)

    class StampOnly:
        def __init__(self, session: Any, stamped: set[int]) -> None:
            self.session = session
            self.stamped = stamped

        def unprotect_rtcp(self, data: bytes) -> bytes:
            return bytes(self.session.unprotect_rtcp(data))

        def unprotect(self, data: bytes) -> bytes:
            return bytes(self.session.unprotect(data)) if data[1] in self.stamped else data

    def setup(self: Any) -> None:
        setup_srtp(self)
        kinds_of(self)
        # aiortc registers the receivers after DTLS: the set fills in then, shared.
        setattr(self, "_rx_srtp", StampOnly(self._rx_srtp, self._bench_stamped))  # noqa: B010

    async def handle_rtp_data(self: Any, data: bytes, arrival_time_ms: int) -> None:
        kind = self._bench_kinds.get(data[1] & 0x7F)
        if kind is None:
            return  # RTX (none expected: no NACK is ever sent) or anything else
        ssrc = int.from_bytes(data[8:12])
        key = f"{self._bench_number}/{ssrc}/{kind}"
        counter = counts.counters.get(key)
        if counter is None:
            counter = counts.counters[key] = SlotCounter()
        counter.add((data[2] << 8) | data[3])
        if data[1] & 0x80 and kind == "video":
            counter.frames += 1
            if data[1] in self._bench_stamped and len(data) > 40:
                (stamp,) = STAMP.unpack_from(data, len(data) - STAMP.size)
                elapsed = (time.monotonic_ns() - stamp) / 1000
                if 0 < elapsed < 10e6:
                    counts.e2e_us.append(elapsed)

    RTCDtlsTransport._register_rtp_receiver = register_rtp_receiver  # type: ignore[method-assign]
    RTCDtlsTransport._setup_srtp = setup  # type: ignore[method-assign]
    RTCDtlsTransport._handle_rtp_data = handle_rtp_data  # type: ignore[method-assign]


def count_raw_rtp(pc: RTCPeerConnection) -> dict[int, SlotCounter]:
    """Count one subscribe connection's VP8 and Opus RTP per SSRC (RTX and the rest ignored).

    Call it after the connection's local answer is set and before DTLS can finish, e.g. from
    ``join_janus(on_subscribe_answer=...)``. Keys are SSRCs.
    """
    transport = pc.getTransceivers()[0].receiver.transport
    counters: dict[int, SlotCounter] = {}
    media = _media_payload_types(pc.localDescription.sdp)

    class HeaderOnly:
        def __init__(self, session: Any) -> None:
            self.session = session

        def unprotect_rtcp(self, data: bytes) -> bytes:
            return bytes(self.session.unprotect_rtcp(data))

        def unprotect(self, data: bytes) -> bytes:
            return data

    setup_srtp = transport._setup_srtp

    def setup() -> None:
        setup_srtp()
        setattr(transport, "_rx_srtp", HeaderOnly(transport._rx_srtp))  # noqa: B010

    async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
        if (data[1] & 0x7F) not in media:
            return  # RTX or anything else
        ssrc = int.from_bytes(data[8:12])
        counter = counters.get(ssrc)
        if counter is None:
            counter = counters[ssrc] = SlotCounter()
        counter.add((data[2] << 8) | data[3])

    if getattr(transport, "_rx_srtp", None) is not None:
        setup_srtp = lambda: None  # noqa: E731 - already keyed: wrap the live session
        setup()
    else:
        setattr(transport, "_setup_srtp", setup)  # noqa: B010
    setattr(transport, "_handle_rtp_data", handle_rtp_data)  # noqa: B010
    return counters


def _media_payload_types(sdp: str) -> set[int]:
    return {
        int(pt) for pt in re.findall(r"a=rtpmap:(\d+) (?:VP8/90000|opus/48000)", sdp, re.IGNORECASE)
    }
