"""Active-speaker detection from RFC 6464 audio levels, without decoding audio.

Each audio packet carries ``level``, the sound level in -dBov from 0 (loudest) to 127
(silence); aiortc parses it as ``packet.extensions.audio_level == (voice, level)``. The
voice-activity bit is not used: aiortc never sets it, and browsers set it loosely.

Per source, :class:`SpeakerDetector` turns levels into a *loudness* in dB above the silence
floor (``silence_level - level``, at least 0) and smooths it with an exponential moving
average of time constant ``time_constant`` (0.3 s: about 1 s to settle). A source that stops
sending packets (muted, or DTX) decays towards silence.

The active speaker changes only when a challenger has been louder than the active speaker
by ``margin`` dB for ``takeover_time`` seconds without a break, and the active speaker has
held the floor for at least ``min_hold`` seconds. A cough (a loud burst of a few hundred ms)
fails the first test: the average does not rise far enough, for long enough.
"""

import heapq
import math
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

SourceKey = TypeVar("SourceKey", bound=Hashable)

SILENCE_LEVEL = 70
"-dBov at or above which a packet counts as silence."
PACKET_INTERVAL = 0.02
"Opus frame duration: a source is assumed silent once a packet is this late."


class _SourceLevel:
    __slots__ = ("loudness", "time")

    def __init__(self, loudness: float, time: float) -> None:
        self.loudness = loudness
        self.time = time


class SpeakerDetector(Generic[SourceKey]):
    """Smoothed loudness per audio source, the loudest sources, and the active speaker.

    Feed it with :meth:`add_level` for each audio packet, and call :meth:`update`
    periodically (every 50-100 ms is plenty) to re-evaluate the active speaker.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        time_constant: float = 0.3,
        silence_level: int = SILENCE_LEVEL,
        margin: float = 6.0,
        takeover_time: float = 0.3,
        min_hold: float = 1.0,
        min_loudness: float = 3.0,
    ) -> None:
        self._clock = clock
        self._time_constant = time_constant
        self._silence_level = silence_level
        self._margin = margin
        self._takeover_time = takeover_time
        self._min_hold = min_hold
        self._min_loudness = min_loudness
        self._sources: dict[SourceKey, _SourceLevel] = {}
        self._active: SourceKey | None = None
        self._active_since = 0.0
        self._challenger: SourceKey | None = None
        self._challenger_since = 0.0

    @property
    def active(self) -> SourceKey | None:
        """The current active speaker, as of the last :meth:`update`."""
        return self._active

    def add_level(self, source: SourceKey, level: int) -> None:
        """Take one packet's audio level (-dBov, 0 loudest .. 127 silence) for ``source``."""
        now = self._clock()
        sample = float(max(0, self._silence_level - level))
        state = self._sources.get(source)
        if state is None:
            state = self._sources[source] = _SourceLevel(0.0, now - PACKET_INTERVAL)
        decay = math.exp(-max(0.0, now - state.time) / self._time_constant)
        state.loudness = sample + (state.loudness - sample) * decay
        state.time = now

    def remove(self, source: SourceKey) -> None:
        """Forget a source (its publisher left)."""
        self._sources.pop(source, None)
        if self._active == source:
            self._active = None
        if self._challenger == source:
            self._challenger = None

    def loudness(self, source: SourceKey) -> float:
        """The smoothed loudness of ``source`` now, in dB above the silence floor."""
        state = self._sources.get(source)
        if state is None:
            return 0.0
        silent_for = self._clock() - state.time - PACKET_INTERVAL
        if silent_for <= 0.0:
            return state.loudness
        return state.loudness * math.exp(-silent_for / self._time_constant)

    def loudest(self, n: int) -> list[SourceKey]:
        """The ``n`` loudest sources now, loudest first (for the audio slots)."""
        return heapq.nlargest(n, self._sources, key=self.loudness)

    def update(self) -> SourceKey | None:
        """Re-evaluate and return the active speaker."""
        now = self._clock()
        if not self._sources:
            self._active = None
            return None
        best = max(self._sources, key=self.loudness)
        best_loudness = self.loudness(best)

        if self._active is None:
            if best_loudness >= self._min_loudness:
                self._active = best
                self._active_since = now
            return self._active

        if best == self._active or best_loudness <= self.loudness(self._active) + self._margin:
            self._challenger = None
            return self._active

        if best != self._challenger:
            self._challenger = best
            self._challenger_since = now
        elif (
            now - self._challenger_since >= self._takeover_time
            and now - self._active_since >= self._min_hold
        ):
            self._active = best
            self._active_since = now
            self._challenger = None
        return self._active
