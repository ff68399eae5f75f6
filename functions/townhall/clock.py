"""The control plane's one clock: every reading of "now" in functions/ goes through `now()`.

In AWS it is the system clock. The local twin and the tests move it forward (`set_offset`) to
see what happens tomorrow, or after a token expires, without waiting; the offset is
process-wide, which covers the twin's handlers (they run in its process by default).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

_offset_seconds = 0.0


def now() -> float:
    """Seconds since the epoch."""
    return time.time() + _offset_seconds


def now_ms() -> int:
    return int(now() * 1000)


def utc_now() -> datetime:
    return datetime.fromtimestamp(now(), UTC)


def set_offset(seconds: float) -> None:
    """Move the clock to `seconds` past the system's (0 puts it back)."""
    global _offset_seconds
    _offset_seconds = float(seconds)


def offset() -> float:
    return _offset_seconds
