"""Forwarding figures: the worker's added-latency histogram, and one room's packet rate.

Measurement only. Nothing here is a module-level variable: a worker makes one
:class:`ForwardingStats` and hands it to its rooms (every room of the worker records into
it, and ``/v1/health`` reads it); each room owns its :class:`PacketRate`.

The hot path pays for them as little as it can: per forwarded slot-packet, one counter
increment on the slot and one :meth:`ForwardingStats.record`. The room's rate is summed from
its slots' counters once per window, not counted per packet.
"""

import time
from collections.abc import Callable
from time import perf_counter_ns

RATE_WINDOW = 1.0
"Seconds over which a room's packets per second is measured."


class ForwardingStats:
    """A worker's forwarding figures for the node's health (one worker is one process).

    ``record`` runs once per forwarded slot-packet and costs a clock read and a list
    increment. The added latency of a slot-packet is the time from the packet's arrival in
    the room's receive hook to the return of its send for that slot (so later slots of one
    packet include the earlier slots' work). It is kept in a cumulative log-linear
    histogram: 8 buckets per octave of nanoseconds, so a bucket is at most 12.5 % wide (see
    :func:`latency_bucket_bounds_ns`).
    """

    BUCKETS = 256

    def __init__(self) -> None:
        self.forwarded = 0
        "Slot-packets sent since the worker started (never reset)."
        self.histogram = [0] * self.BUCKETS
        "Cumulative count per latency bucket (never reset)."
        self._base = [0] * self.BUCKETS

    def record(self, arrived_ns: int) -> None:
        """Count one forwarded slot-packet that arrived at ``arrived_ns`` (perf_counter_ns)."""
        n = perf_counter_ns() - arrived_ns
        self.forwarded += 1
        if n < 16:
            index = max(n, 0)
        else:
            bits = n.bit_length()
            index = min(((bits - 3) << 3) | ((n >> (bits - 4)) & 7), self.BUCKETS - 1)
        self.histogram[index] += 1

    def latency_since_last_read(self) -> dict[str, float]:
        """p50, p99, max (µs, bucket midpoints) and count since the previous call."""
        counts = [now - base for now, base in zip(self.histogram, self._base, strict=True)]
        self._base = list(self.histogram)
        return latency_summary(counts)


def latency_bucket_bounds_ns(index: int) -> tuple[int, int]:
    """The [low, high) nanoseconds of a ForwardingStats histogram bucket."""
    if index < 16:
        return index, index + 1
    shift, mantissa = (index >> 3) - 1, (index & 7) | 8
    return mantissa << shift, (mantissa + 1) << shift


def latency_summary(counts: list[int]) -> dict[str, float]:
    """p50, p99, max (µs, bucket midpoints) and count of a ForwardingStats histogram."""
    total = sum(counts)
    summary: dict[str, float] = {"p50": 0.0, "p99": 0.0, "max": 0.0, "count": total}
    if total == 0:
        return summary
    wanted = {"p50": 0.5 * total, "p99": 0.99 * total}
    seen = 0
    for index, count in enumerate(counts):
        if not count:
            continue
        seen += count
        low, high = latency_bucket_bounds_ns(index)
        middle = (low + high) / 2000
        for name, rank in list(wanted.items()):
            if seen >= rank:
                summary[name] = middle
                del wanted[name]
        summary["max"] = middle
    return summary


class PacketRate:
    """One room's forwarded packets per second, from its slots' own counters.

    The room hands :meth:`update` the total its live slots have sent; slots that are gone
    leave their counts in :meth:`retire`, so the total never goes back.

    :param clock: monotonic seconds; injectable for tests.
    """

    def __init__(
        self, window: float = RATE_WINDOW, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_second = 0.0
        "The rate over the last complete window."
        self._window = window
        self._clock = clock
        self._retired = 0
        self._count = 0
        self._time = clock()

    def due(self, now: float) -> bool:
        """Whether a window has passed since the last update."""
        return now - self._time >= self._window

    def retire(self, forwarded: int) -> None:
        """Keep the count of a slot that is going away."""
        self._retired += forwarded

    def update(self, live: int, now: float) -> None:
        """Close the window at ``now``, with ``live`` packets sent so far by live slots."""
        total = self._retired + live
        self.per_second = (total - self._count) / (now - self._time)
        self._count = total
        self._time = now
