"""Slot sender reports: the private seam they use, guarded, and the swap itself."""

import inspect
from types import SimpleNamespace
from typing import Any

import aiortc
from aiortc import RTCRtpSender
from aiortc.rtp import (
    AnyRtcpPacket,
    RtcpByePacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
)

from media_fleet.rtc.seams import ASSUMED_AIORTC_VERSION
from media_fleet.rtp.sender_report import SenderStatistics
from media_fleet.sfu.reports import install_sender_reports

SEAM = (
    f"seam RTCRtpSender._send_rtcp (media_fleet/sfu/reports.py), pinned aiortc "
    f"{ASSUMED_AIORTC_VERSION}, installed {aiortc.__version__}"
)


def test_the_stock_rtcp_loop_sends_through_send_rtcp() -> None:
    send_rtcp = RTCRtpSender._send_rtcp
    assert inspect.iscoroutinefunction(send_rtcp), SEAM
    assert list(inspect.signature(send_rtcp).parameters) == ["self", "packets"], SEAM
    loop = inspect.getsource(RTCRtpSender._run_rtcp)
    assert "RtcpSrPacket(" in loop and "await self._send_rtcp(packets)" in loop, SEAM
    assert "await self._send_rtcp([packet])" in loop, SEAM  # the BYE


async def test_the_stock_report_is_replaced_by_the_slot_statistics() -> None:
    sent: list[list[AnyRtcpPacket]] = []

    async def original(packets: list[AnyRtcpPacket]) -> None:
        sent.append(packets)

    sender: Any = SimpleNamespace(_send_rtcp=original)
    statistics = SenderStatistics(1234, 90000, clock=lambda: 1_700_000_000.0)
    install_sender_reports(sender, statistics)
    stock = RtcpSrPacket(ssrc=1234, sender_info=RtcpSenderInfo(0, 0, 0, 0))
    sdes = RtcpSdesPacket()

    await sender._send_rtcp([stock, sdes])
    assert sent == []  # nothing forwarded yet: no report

    statistics.on_sent(5000, 1000)
    statistics.on_sent(8000, 500)
    await sender._send_rtcp([stock, sdes])
    report, passed = sent[-1]
    assert isinstance(report, RtcpSrPacket) and passed is sdes
    assert report.ssrc == 1234
    assert (report.sender_info.packet_count, report.sender_info.octet_count) == (2, 1500)
    assert report.sender_info.rtp_timestamp == 8000

    bye = RtcpByePacket(sources=[1234])
    await sender._send_rtcp([bye])
    assert sent[-1] == [bye]
