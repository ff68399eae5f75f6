"""SenderStatistics: per-slot counts and a correct RTCP sender report."""

from aiortc import clock as aiortc_clock
from aiortc.rtp import RtcpPacket, RtcpSrPacket

from media_fleet.rtp.sender_report import SenderStatistics, ntp_timestamp

UNIX_TIME = 1_795_000_000.25  # a moment in 2026


class FakeClock:
    def __init__(self) -> None:
        self.now = UNIX_TIME

    def __call__(self) -> float:
        return self.now


def test_ntp_timestamp_matches_aiortc() -> None:
    ntp = ntp_timestamp(UNIX_TIME)
    assert ntp & 0xFFFFFFFF == 1 << 30  # .25 s
    assert aiortc_clock.datetime_from_ntp(ntp).timestamp() == UNIX_TIME


def test_no_report_before_the_first_packet() -> None:
    assert SenderStatistics(ssrc=1, clock_rate=90000).sender_report() is None


def test_report_counts_and_extrapolates_the_timestamp_to_now() -> None:
    clock = FakeClock()
    stats = SenderStatistics(ssrc=0x5151, clock_rate=90000, clock=clock)
    stats.on_sent(timestamp=0xFFFFFF00, payload_size=1000)
    clock.now += 0.01
    stats.on_sent(timestamp=0xFFFFFF00, payload_size=500)
    clock.now += 0.02
    stats.on_sent(timestamp=(0xFFFFFF00 + 2700) & 0xFFFFFFFF, payload_size=200)  # wraps
    stats.on_sent(timestamp=0xFFFFFF00, payload_size=100)  # a late one: counted, not newest
    clock.now += 0.5

    report = stats.sender_report()
    assert report is not None
    info = report.sender_info
    assert report.ssrc == 0x5151
    assert (info.packet_count, info.octet_count) == (4, 1800)
    assert info.rtp_timestamp == (0xFFFFFF00 + 2700 + 45000) & 0xFFFFFFFF
    assert info.ntp_timestamp == ntp_timestamp(UNIX_TIME + 0.53)

    parsed = RtcpPacket.parse(bytes(report))
    assert len(parsed) == 1 and isinstance(parsed[0], RtcpSrPacket)
    assert parsed[0].sender_info == info
