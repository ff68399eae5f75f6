"""Sender statistics of one slot and its RTCP sender report (RFC 3550 section 6.4.1).

A forwarding slot bypasses the stock aiortc sender, which then reports zero packets and a
zero NTP time in its SRs. The browser needs true SRs: the NTP/RTP pair lets it align audio
and video of one participant (lip sync), and the counts feed its statistics. This module
keeps the counts and builds the SR; sending it (and silencing the stock one) is the node's
job.

The RTP timestamp in the SR is the one that corresponds to the NTP time "now": the newest
sent timestamp plus the wall time since it was sent, times the clock rate. That puts the
slot on the node's clock, which is right to within the forwarding jitter. (Mapping the
publisher's own SRs through the slot's timestamp offset would be exact; see docs/media-forwarding.md.)
"""

import time
from collections.abc import Callable

from aiortc.rtp import RtcpSenderInfo, RtcpSrPacket

from .seqnum import TIMESTAMP_MASK, timestamp_newer

NTP_UNIX_EPOCH_OFFSET = 2_208_988_800
"Seconds from the NTP epoch (1900) to the Unix epoch (1970)."


def ntp_timestamp(unix_time: float) -> int:
    """Return the 64-bit NTP timestamp (32.32 fixed point) for a Unix time in seconds."""
    seconds = int(unix_time)
    fraction = int((unix_time - seconds) * (1 << 32))
    return ((seconds + NTP_UNIX_EPOCH_OFFSET) << 32) | (fraction & 0xFFFFFFFF)


class SenderStatistics:
    """Packet and octet counts of one outgoing stream, and the newest timestamp sent.

    :param ssrc: the slot's SSRC.
    :param clock_rate: RTP clock rate of the slot.
    :param clock: Unix time in seconds; injectable for tests.
    """

    def __init__(
        self, ssrc: int, clock_rate: int, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self._clock = clock
        self.packet_count = 0
        self.octet_count = 0
        self.last_timestamp: int | None = None
        self.last_time = 0.0

    def on_sent(self, timestamp: int, payload_size: int) -> None:
        """Count one sent RTP packet with this timestamp and payload size (no header)."""
        self.packet_count += 1
        self.octet_count += payload_size
        if self.last_timestamp is None or timestamp_newer(timestamp, self.last_timestamp):
            self.last_timestamp = timestamp
            self.last_time = self._clock()

    def sender_report(self) -> RtcpSrPacket | None:
        """Build the SR for now, or None before the first packet was sent."""
        if self.last_timestamp is None:
            return None
        now = self._clock()
        elapsed = round((now - self.last_time) * self.clock_rate)
        return RtcpSrPacket(
            ssrc=self.ssrc,
            sender_info=RtcpSenderInfo(
                ntp_timestamp=ntp_timestamp(now),
                rtp_timestamp=(self.last_timestamp + elapsed) & TIMESTAMP_MASK,
                packet_count=self.packet_count & 0xFFFFFFFF,
                octet_count=self.octet_count & 0xFFFFFFFF,
            ),
        )
