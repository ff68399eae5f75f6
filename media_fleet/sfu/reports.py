"""True sender reports for a forwarding slot, through the stock sender's RTCP loop.

A slot's packets bypass the stock :class:`aiortc.RTCRtpSender`, whose RTCP loop (every
0.5-1.5 s) would report zero packets and a stale NTP/RTP pair. Instead of cancelling that
loop (``stop()`` waits for it to exit), this module swaps what it sends: the stock SR is
replaced by :meth:`~media_fleet.rtp.sender_report.SenderStatistics.sender_report`, while its
SDES (CNAME) and final BYE pass through. Before the slot has sent a packet the compound
packet is not sent at all.

Seam (private, aiortc 1.16.0, guarded by ``tests/media/test_sfu_reports.py``):
``RTCRtpSender._send_rtcp(packets)``, which ``RTCRtpSender._run_rtcp`` calls through
``self`` with the list ``[RtcpSrPacket, RtcpSdesPacket]`` each round and ``[RtcpByePacket]``
at the end. A candidate for ``media_fleet/rtc/seams.py``.
"""

import logging
from collections.abc import Awaitable, Callable

from aiortc import RTCRtpSender
from aiortc.rtp import AnyRtcpPacket, RtcpSrPacket

from media_fleet.rtp.sender_report import SenderStatistics

logger = logging.getLogger(__name__)

SendRtcp = Callable[[list[AnyRtcpPacket]], Awaitable[None]]


def install_sender_reports(sender: RTCRtpSender, statistics: SenderStatistics) -> None:
    """Make the sender's periodic SR carry ``statistics`` instead of the stock zeros."""
    original: SendRtcp = sender._send_rtcp

    async def send_rtcp(packets: list[AnyRtcpPacket]) -> None:
        try:
            replaced: list[AnyRtcpPacket] = []
            for packet in packets:
                if isinstance(packet, RtcpSrPacket):
                    report = statistics.sender_report()
                    if report is None:
                        return  # nothing sent yet: no report this round
                    packet = report
                replaced.append(packet)
        except Exception:
            logger.exception("sender report hook failed; the stock report goes out")
            replaced = packets
        await original(replaced)

    setattr(sender, "_send_rtcp", send_rtcp)  # noqa: B010
