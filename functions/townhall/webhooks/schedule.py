"""When a failed delivery is tried again: the Standard Webhooks schedule, about 27 hours.

Attempt 1 is at once; each later one waits `RETRY_WAITS_SECONDS[attempt - 1]` after the one
before. After the last, the delivery is failed, its message goes to the dead-letter queue and
(if its subscription has not succeeded since it began) the subscription is disabled.

SQS delays a message 15 minutes at most, so a longer wait is served in legs: the message is
sent again with the rest of the wait, as many times as it takes (`QueueDelay.legs`).

`time_scale` is the clock seam: the twin's tests run the whole schedule in a second or two by
scaling every wait (WEBHOOK_RETRY_TIME_SCALE; AWS never sets it, so it is 1 there).
"""

from __future__ import annotations

from dataclasses import dataclass

# 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: 27 h 35 min 5 s from the first attempt to the last.
RETRY_WAITS_SECONDS: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
ATTEMPTS = len(RETRY_WAITS_SECONDS) + 1
MAX_SQS_DELAY_SECONDS = 900


@dataclass(frozen=True)
class RetrySchedule:
    waits: tuple[int, ...] = RETRY_WAITS_SECONDS
    time_scale: float = 1.0

    @property
    def attempts(self) -> int:
        return len(self.waits) + 1

    def wait_after(self, attempt: int) -> int | None:
        """Seconds (on the unscaled schedule) before the attempt after `attempt` (1-based);
        None after the last."""
        return self.waits[attempt - 1] if 1 <= attempt <= len(self.waits) else None

    def real_seconds(self, schedule_seconds: float) -> float:
        return schedule_seconds * self.time_scale


def first_leg(wait_seconds: float) -> tuple[int, float]:
    """(the SQS delay to send a message with now, the wait left after it). SQS delays are
    whole seconds: the last leg is rounded, so a wait is served to half a second."""
    if wait_seconds <= MAX_SQS_DELAY_SECONDS:
        return max(0, round(wait_seconds)), 0.0
    return MAX_SQS_DELAY_SECONDS, wait_seconds - MAX_SQS_DELAY_SECONDS
