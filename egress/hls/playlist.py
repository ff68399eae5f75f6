"""LL-HLS playlists as data, rendered to text (RFC 8216bis, "Enabling Low-Latency HLS").

A :class:`MediaPlaylist` is one rendition's live playlist. The packager adds each CMAF part as
it is written (:meth:`MediaPlaylist.add_part`) and closes a segment when the next one starts
(:meth:`MediaPlaylist.close_segment`); :meth:`MediaPlaylist.render` gives the text to publish.
:class:`MultivariantPlaylist` lists the renditions of the ABR ladder.

The rules this module keeps (each checked in tests/egress/test_playlist.py):

- ``EXT-X-TARGETDURATION`` is an integer; every segment's ``EXTINF``, rounded to the nearest
  integer, is at most that (refused otherwise).
- ``EXT-X-PART-INF:PART-TARGET``: every part is at most the part target; the rendered value is
  rounded *up* so that a part of exactly the target (10 frames at 30 fps, 0.333333 s) does not
  exceed a rendered 0.33333. A part shorter than 85 % of the target is allowed only as the
  last part of its segment (the spec's exception); an earlier short part is refused.
- ``EXT-X-SERVER-CONTROL``: ``CAN-BLOCK-RELOAD=YES``; ``PART-HOLD-BACK`` three part targets (the
  spec's SHOULD; twice is its MUST); ``HOLD-BACK`` three target durations (its minimum).
- The first part of every segment is ``INDEPENDENT=YES`` (a keyframe starts each segment, so
  the multivariant playlist can say ``EXT-X-INDEPENDENT-SEGMENTS``); a part that does not start
  with a keyframe has no ``INDEPENDENT`` attribute.
- ``EXT-X-PRELOAD-HINT:TYPE=PART`` names the part that comes next (the next index of the open
  segment: the packager cannot know ahead of time whether it will start a new segment, and a
  player that asked for a hint that never comes just gets the new playlist).
- ``EXT-X-PART`` lines are kept only for segments within three target durations of the live
  edge (the spec lets older ones go; players only use parts near the edge).
- The window is bounded: at most ``window_segments`` complete segments, but a segment never
  leaves while the rest would last less than three target durations (RFC 8216, 6.2.2).
- ``EXT-X-VERSION:6``: the lowest version with ``EXT-X-MAP`` in a media playlist that is not
  I-frames only; the LL-HLS tags need no higher version.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

VERSION = 6
MIN_PART_FRACTION = 0.85
"A part shorter than this fraction of the part target may only end its segment."
PART_WINDOW_TARGET_DURATIONS = 3
"EXT-X-PART lines are listed for segments ending within this many target durations of the edge."


class PlaylistError(ValueError):
    """A part or segment that would break the playlist's rules (nothing was changed)."""


@dataclass(frozen=True)
class Part:
    """One LL-HLS partial segment: a CMAF chunk (moof + mdat) of a rendition."""

    uri: str
    duration: float
    independent: bool


@dataclass
class Segment:
    """A media segment: its parts, and its URI once it is complete."""

    msn: int
    program_date_time: datetime
    parts: list[Part] = field(default_factory=list)
    uri: str | None = None

    @property
    def duration(self) -> float:
        return sum(part.duration for part in self.parts)

    @property
    def complete(self) -> bool:
        return self.uri is not None


def format_decimal(seconds: float) -> str:
    return f"{seconds:.5f}"


def ceil_decimal(seconds: float, digits: int = 5) -> float:
    """Round up at ``digits`` decimals, ignoring float noise below them."""
    scale = 10**digits
    return math.ceil(round(seconds * scale, 3)) / scale


def format_date_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class MediaPlaylist:
    """One rendition's live LL-HLS media playlist."""

    def __init__(
        self,
        *,
        init_uri: str,
        target_duration: int,
        part_target: float,
        part_uri: Callable[[int, int], str],
        window_segments: int = 6,
        first_msn: int = 0,
    ) -> None:
        if target_duration < 1:
            raise PlaylistError("target_duration must be at least 1 s")
        if not 0 < part_target <= target_duration:
            raise PlaylistError("part_target must be positive and at most the target duration")
        if window_segments < 1:
            raise PlaylistError("window_segments must be at least 1")
        self.init_uri = init_uri
        self.target_duration = target_duration
        self.part_target = ceil_decimal(part_target)
        self.window_segments = window_segments
        self._part_uri = part_uri
        self._segments: deque[Segment] = deque()
        self._next_msn = first_msn
        self.ended = False

    @property
    def part_hold_back(self) -> float:
        return ceil_decimal(3 * self.part_target)

    @property
    def hold_back(self) -> float:
        return 3.0 * self.target_duration

    @property
    def segments(self) -> tuple[Segment, ...]:
        return tuple(self._segments)

    @property
    def media_sequence(self) -> int:
        return self._segments[0].msn if self._segments else self._next_msn

    def _open_segment(self) -> Segment | None:
        if self._segments and not self._segments[-1].complete:
            return self._segments[-1]
        return None

    def add_part(self, part: Part, *, program_date_time: datetime) -> tuple[int, int]:
        """Append ``part`` to the open segment (opening one, at ``program_date_time``, if none).

        Returns the part's position (media sequence number, part index).
        """
        if self.ended:
            raise PlaylistError("the playlist has ended")
        if not 0 < part.duration <= self.part_target:
            raise PlaylistError(
                f"part duration {part.duration:.6f} s is not within (0, {self.part_target}]"
            )
        segment = self._open_segment()
        if segment is None:
            if not part.independent:
                raise PlaylistError("a segment must start with an independent part (a keyframe)")
            segment = Segment(msn=self._next_msn, program_date_time=program_date_time)
            self._next_msn += 1
            self._segments.append(segment)
        elif segment.parts[-1].duration < MIN_PART_FRACTION * self.part_target:
            raise PlaylistError("only the last part of a segment may be shorter than 85 % of it")
        segment.parts.append(part)
        return segment.msn, len(segment.parts) - 1

    def close_segment(self, uri: str) -> Segment:
        """Complete the open segment under ``uri``, then drop what leaves the window."""
        segment = self._open_segment()
        if segment is None:
            raise PlaylistError("no open segment to close")
        if round(segment.duration) > self.target_duration:
            raise PlaylistError(
                f"segment of {segment.duration:.3f} s exceeds the target duration "
                f"{self.target_duration} s"
            )
        segment.uri = uri
        self._slide_window()
        return segment

    def end(self) -> None:
        """Mark the broadcast over (EXT-X-ENDLIST); an open segment must be closed first."""
        if self._open_segment() is not None:
            raise PlaylistError("close the open segment before ending the playlist")
        self.ended = True

    def _slide_window(self) -> None:
        complete = [segment for segment in self._segments if segment.complete]
        minimum = 3 * self.target_duration
        # Bounded by the number of segments held: each pass removes one.
        for _ in range(len(complete)):
            remaining = sum(segment.duration for segment in complete[1:])
            # A microsecond's slack: six parts of 1/3 s add up to a hair under 2 s in floats.
            if len(complete) <= self.window_segments or remaining < minimum - 1e-6:
                break
            complete.pop(0)
            self._segments.popleft()

    def next_part_position(self) -> tuple[int, int]:
        segment = self._open_segment()
        if segment is not None:
            return segment.msn, len(segment.parts)
        return self._next_msn, 0

    def render(self) -> str:
        lines = [
            "#EXTM3U",
            f"#EXT-X-VERSION:{VERSION}",
            f"#EXT-X-TARGETDURATION:{self.target_duration}",
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,"
            f"PART-HOLD-BACK={format_decimal(self.part_hold_back)},"
            f"HOLD-BACK={format_decimal(self.hold_back)}",
            f"#EXT-X-PART-INF:PART-TARGET={format_decimal(self.part_target)}",
            f"#EXT-X-MEDIA-SEQUENCE:{self.media_sequence}",
            f'#EXT-X-MAP:URI="{self.init_uri}"',
        ]
        part_window_start = self._part_window_start()
        for segment in self._segments:
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_date_time(segment.program_date_time)}")
            if segment.msn >= part_window_start:
                for part in segment.parts:
                    independent = ",INDEPENDENT=YES" if part.independent else ""
                    lines.append(
                        f"#EXT-X-PART:DURATION={format_decimal(part.duration)},"
                        f'URI="{part.uri}"{independent}'
                    )
            if segment.complete:
                lines.append(f"#EXTINF:{format_decimal(segment.duration)},")
                lines.append(str(segment.uri))
        if self.ended:
            lines.append("#EXT-X-ENDLIST")
        else:
            msn, index = self.next_part_position()
            lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{self._part_uri(msn, index)}"')
        return "\n".join(lines) + "\n"

    def _part_window_start(self) -> int:
        """The first msn whose parts are listed: segments ending within 3 target durations."""
        window = PART_WINDOW_TARGET_DURATIONS * self.target_duration
        from_edge = 0.0
        start = self._next_msn
        for segment in reversed(self._segments):
            if from_edge >= window:
                break
            start = segment.msn
            from_edge += segment.duration
        return start


@dataclass(frozen=True)
class Variant:
    """One rung of the ABR ladder, as the multivariant playlist lists it."""

    uri: str
    bandwidth: int
    codecs: str
    width: int
    height: int
    frame_rate: float


@dataclass(frozen=True)
class MultivariantPlaylist:
    variants: tuple[Variant, ...]

    def render(self) -> str:
        if not self.variants:
            raise PlaylistError("a multivariant playlist needs at least one variant")
        lines = ["#EXTM3U", f"#EXT-X-VERSION:{VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
        for variant in sorted(self.variants, key=lambda v: -v.bandwidth):
            lines.append(
                f"#EXT-X-STREAM-INF:BANDWIDTH={variant.bandwidth},"
                f'CODECS="{variant.codecs}",RESOLUTION={variant.width}x{variant.height},'
                f"FRAME-RATE={variant.frame_rate:.3f}"
            )
            lines.append(variant.uri)
        return "\n".join(lines) + "\n"
