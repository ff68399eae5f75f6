"""Fuzz target: the RTCP parse the node runs on every compound packet a peer sends, and the
node's feedback handler behind it.

aiortc's ``RtcpPacket.parse`` reads the decrypted bytes (``RTCDtlsTransport._handle_rtcp_data``,
which catches ValueError only); the transport's router reads a REMB's FCI with
``unpack_remb_fci`` (again catching ValueError only) and hands each packet to the sender,
where the node's handler (``media_fleet.sfu.feedback.rtcp_feedback``) answers NACKs with RTX
from the slot's history (``Retransmitter``), PLI/FIR with a keyframe request, and records a
REMB's bitrate.

The worker runs inside ``seams.refuse_malformed_packets()``, which turns the ``struct.error``
of aiortc 1.16.0's ``unpack_remb_fci`` (an SSRC count that runs past the FCI) into ValueError,
and so does this target: :func:`check` enters the guard for each input (the corpus replay), a
fuzz run enters it once around the whole run, as the worker does.

Contract: both parses return or raise ValueError; the node's handler never raises, answers a
NACK with RTX packets of lost numbers it still holds (at most ``MAX_NACKS_PER_PACKET``),
asks one keyframe per PLI/FIR, and records the REMB aiortc reads. Round trips, for what the
node itself sends (aiortc serializes them): a NACK of sorted, distinct 16-bit numbers
(``_send_rtcp_nack``), a REMB (``pack_remb_fci``), PLI/FIR, sender and receiver reports.
"""

from __future__ import annotations

from collections.abc import Awaitable

import aiortc.rtp
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
    unwrap_rtx,
)

from tests.fuzz import harness

harness.instrument_module(aiortc.rtp, __name__)

with harness.instrumented(__name__):
    from media_fleet.rtc import seams
    from media_fleet.rtp.history import PacketHistory
    from media_fleet.sfu.feedback import MAX_NACKS_PER_PACKET, Retransmitter, rtcp_feedback

HISTORY_SIZE = 64
MEDIA_PAYLOAD_TYPE, RTX_PAYLOAD_TYPE, UNMAPPED_PAYLOAD_TYPE = 96, 97, 111


def sent_history() -> PacketHistory:
    """A slot that sent HISTORY_SIZE packets across the 16-bit wrap; every fourth in a
    payload type with no RTX (the handler must skip those)."""
    history = PacketHistory(RTX_PAYLOAD_TYPE, 0xA0A0A0A0, size=HISTORY_SIZE)
    for offset in range(HISTORY_SIZE):
        sequence_number = (0xFFFF - HISTORY_SIZE // 2 + offset) & 0xFFFF
        payload_type = UNMAPPED_PAYLOAD_TYPE if offset % 4 == 0 else MEDIA_PAYLOAD_TYPE
        packet = RtpPacket(payload_type=payload_type, sequence_number=sequence_number, ssrc=7)
        packet.payload = offset.to_bytes(2, "big")
        history.add(sequence_number, packet.serialize())
    return history


_RETRANSMITTER = Retransmitter(sent_history(), {MEDIA_PAYLOAD_TYPE: RTX_PAYLOAD_TYPE})


class _Feedback:
    """The room's side (a SinkFeedback), counting what it is asked."""

    def __init__(self) -> None:
        self.keyframes = 0
        self.bandwidth: int | None = None

    async def request_keyframe(self) -> None:
        self.keyframes += 1

    def report_bandwidth(self, bitrate: int) -> None:
        self.bandwidth = bitrate


def _complete(awaitable: Awaitable[None]) -> None:
    """Run a handler whose awaits never suspend (the stubs here) in one step, no event loop."""
    steps = awaitable.__await__()
    try:
        next(steps)
    except StopIteration:
        return
    raise AssertionError("the feedback handler suspended on a stub that never does")


def check(data: bytes) -> None:
    """One input, inside the node's guard."""
    with seams.refuse_malformed_packets():
        check_guarded(data)


def check_guarded(data: bytes) -> None:
    """One input, for a caller already inside ``seams.refuse_malformed_packets()``."""
    try:
        packets = RtcpPacket.parse(data)
    except ValueError:  # all that RTCDtlsTransport._handle_rtcp_data catches
        return
    for packet in packets:
        remb = _remb(packet) if isinstance(packet, RtcpPsfbPacket) else None
        _check_handler(packet, remb)
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            lost = sorted({x & 0xFFFF for x in packet.lost})
            nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=packet.ssrc, media_ssrc=1, lost=lost)
            assert RtcpPacket.parse(bytes(nack)) == [nack], lost
        elif isinstance(packet, RtcpPsfbPacket) and remb is not None:
            bitrate, ssrcs = remb
            if len(ssrcs) <= 0xFF:
                again = aiortc.rtp.unpack_remb_fci(pack_remb_fci(bitrate, ssrcs))
                assert again == remb, (remb, again)
        elif isinstance(packet, RtcpPsfbPacket) and len(packet.fci) % 4 == 0:
            assert RtcpPacket.parse(bytes(packet)) == [packet], packet  # PLI, FIR (8-byte FCIs)
        elif isinstance(packet, RtcpSrPacket | RtcpRrPacket):
            assert RtcpPacket.parse(bytes(packet)) == [packet], packet


def _remb(packet: RtcpPsfbPacket) -> tuple[int, list[int]] | None:
    """The REMB as aiortc's router reads it (through the module, as route_rtcp calls it)."""
    if packet.fmt != RTCP_PSFB_APP:
        return None
    try:
        return aiortc.rtp.unpack_remb_fci(packet.fci)
    except ValueError:  # all that RtpRouter.route_rtcp catches
        return None


def _check_handler(packet: AnyRtcpPacket, remb: tuple[int, list[int]] | None) -> None:
    sent: list[bytes] = []

    async def retransmit(rtx: bytes) -> None:
        sent.append(rtx)

    feedback = _Feedback()
    _complete(rtcp_feedback(_RETRANSMITTER, retransmit, feedback)(packet))

    if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
        asked = packet.lost[:MAX_NACKS_PER_PACKET]
        assert len(sent) <= len(asked)
        for rtx in sent:
            parsed = RtpPacket.parse(rtx)
            assert parsed.payload_type == RTX_PAYLOAD_TYPE, parsed
            assert unwrap_rtx(parsed, MEDIA_PAYLOAD_TYPE, 7).sequence_number in asked
    else:
        assert sent == [], packet
    keyframe = isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR)
    assert feedback.keyframes == (1 if keyframe else 0), packet
    assert feedback.bandwidth == (remb[0] if remb is not None else None), (packet, remb)


if __name__ == "__main__":
    with seams.refuse_malformed_packets():  # once, as the worker enters it
        harness.main(check_guarded)
