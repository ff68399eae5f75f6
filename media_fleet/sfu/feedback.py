"""Feedback: keyframe requests to publishers, NACKs answered with RTX, REMB recorded.

- **Keyframes.** Every PLI the room sends a publisher goes through :func:`request_keyframe`,
  rate-limited per source: a slot switching to a source asks every 0.25 s
  (:data:`SWITCH_KEYFRAME_INTERVAL`, driven by the room's timer), a subscriber's PLI or FIR
  at most every 0.5 s (:data:`FEEDBACK_KEYFRAME_INTERVAL`). So one PLI serves every
  subscriber that wants the same source's keyframe.
- **A sink's feedback** reaches the room through :class:`SlotFeedback`, the room's
  :class:`~media_fleet.sfu.sink.SinkFeedback` for one slot: a PLI/FIR asks the source
  feeding the slot now; a REMB is recorded on the slot (nothing acts on it yet).
- **NACKs** are answered by the sink from its own history (:class:`Retransmitter`, RFC 4588
  RTX with the RTX payload type that goes with the payload type the lost packet was sent
  in). Retransmission never goes back to the publisher.

:func:`rtcp_feedback` turns the RTCP a sink's receiver sends into those calls; a sink on
aiortc installs it with :func:`~media_fleet.rtc.seams.install_feedback_hook`.
"""

import struct
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence

from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    unpack_remb_fci,
)

from media_fleet.rtc import seams
from media_fleet.rtp.history import PacketHistory

from .forwarding import SlotForwarder, Source
from .sink import SinkFeedback

SWITCH_KEYFRAME_INTERVAL = 0.25
"Minimum seconds between two PLIs to one source driven by slot switches."
FEEDBACK_KEYFRAME_INTERVAL = 0.5
"Minimum seconds between two PLIs to one source forwarded from subscribers' PLI/FIR."
MAX_NACKS_PER_PACKET = 64
"At most this many retransmissions answer one NACK packet."


async def request_keyframe(source: Source, min_interval: float) -> None:
    """Send the source's publisher a PLI, unless one went out less than ``min_interval`` ago."""
    now = time.monotonic()
    if source.ssrc is None or now - source.last_keyframe_request < min_interval:
        return
    source.last_keyframe_request = now
    await seams.request_keyframe(source.receiver, source.ssrc)


class SlotFeedback:
    """The room's side of one slot's :class:`~media_fleet.sfu.sink.SinkFeedback`."""

    def __init__(self, slot: SlotForwarder, sources_by_ssrc: Mapping[int, Source]) -> None:
        self._slot = slot
        self._sources_by_ssrc = sources_by_ssrc
        self.bandwidth: int | None = None
        "The receiver's latest REMB estimate, bits per second (recorded, not acted on yet)."

    async def request_keyframe(self) -> None:
        rewriter = self._slot.rewriter
        ssrc = rewriter.source if rewriter is not None else None
        source = self._sources_by_ssrc.get(ssrc) if ssrc is not None else None
        if source is not None:
            await request_keyframe(source, FEEDBACK_KEYFRAME_INTERVAL)

    def report_bandwidth(self, bitrate: int) -> None:
        self.bandwidth = bitrate


class Retransmitter:
    """Answers a receiver's NACKs with RTX from a sink's :class:`PacketHistory`.

    :param history: what the sink sent, by its sequence numbers.
    :param rtx_payload_types: the receiver's RTX payload type for each media payload type.
    """

    def __init__(self, history: PacketHistory, rtx_payload_types: Mapping[int, int]) -> None:
        self.history = history
        self._rtx_payload_types = rtx_payload_types

    def answer(self, lost: Sequence[int]) -> Iterator[bytes]:
        """The RTX packets (before SRTP) that repair ``lost``, for what is still kept."""
        history = self.history
        for sequence_number in lost[:MAX_NACKS_PER_PACKET]:
            sent = history.get(sequence_number)
            if sent is None:
                continue
            # the RTX payload type that goes with the codec the packet was sent in
            rtx_payload_type = self._rtx_payload_types.get(sent[1] & 0x7F)
            if rtx_payload_type is None:
                continue
            history.rtx_payload_type = rtx_payload_type
            rtx = history.rtx_for(sequence_number)
            if rtx is not None:
                yield rtx


def rtcp_feedback(
    retransmitter: Retransmitter | None,
    retransmit: Callable[[bytes], Awaitable[object]],
    feedback: SinkFeedback,
) -> seams.FeedbackHandler:
    """The handler for RTCP a sink's receiver sends about its stream.

    :param retransmitter: answers NACKs (None: the sink keeps no history).
    :param retransmit: sends one RTX packet (before SRTP) on the sink's transport.
    """

    async def on_rtcp(packet: AnyRtcpPacket) -> None:
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            if retransmitter is not None:
                for rtx in retransmitter.answer(packet.lost):
                    await retransmit(rtx)
        elif isinstance(packet, RtcpPsfbPacket):
            if packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                await feedback.request_keyframe()
            elif packet.fmt == RTCP_PSFB_APP:
                try:
                    bitrate, _ssrcs = unpack_remb_fci(packet.fci)
                except (ValueError, struct.error):
                    return  # an application feedback other than REMB, or a truncated one
                feedback.report_bandwidth(bitrate)

    return on_rtcp
