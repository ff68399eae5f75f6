"""Where a published media playlist ends, and whether a blocking reload can be answered.

The origin does not share memory with the packager: it reads the playlist the packager
published (our own format, :mod:`egress.hls.playlist`) and takes from it the live edge, the
last complete segment and the last part. A blocking playlist reload (RFC 8216bis 6.2.5.2)
asks for ``_HLS_msn=M`` (the playlist must contain segment M, complete) or ``_HLS_msn=M`` and
``_HLS_part=P`` (it must contain part P of segment M, or segment M must have ended before
part P and a later part exist).

:func:`parse_delivery_directives` refuses, with :class:`DirectiveError` (a 400), what the spec
calls malformed: ``_HLS_part`` without ``_HLS_msn``, values that are not decimal integers, and
requests too far ahead: an MSN more than two beyond the playlist's last segment, or a part
more than the Advance Part Limit beyond its last part (three divided by the part target when
that is under a second, else three).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

MAX_DIRECTIVE_DIGITS = 19
"A media sequence number is at most 2^63 - 1 here; longer values are refused unparsed."


class DirectiveError(ValueError):
    """A malformed or too-far-ahead delivery directive (answered with 400)."""


@dataclass(frozen=True)
class LiveEdge:
    """What a published media playlist holds, as far as blocking reloads care."""

    target_duration: int
    part_target: float
    last_complete_msn: int | None
    "MSN of the newest complete segment, None before the first one closes."
    last_part: tuple[int, int] | None
    "(MSN, index) of the newest part, None before the first part."
    ended: bool

    @property
    def last_msn(self) -> int | None:
        """The playlist's last segment, counting the open one that has parts."""
        return self.last_part[0] if self.last_part is not None else self.last_complete_msn

    def could_be_next_part(self, msn: int, index: int) -> bool:
        """Whether (msn, index) is the part a preload hint names now: the next index, or the
        first part of the next segment (the packager does not know yet which it will be)."""
        if self.ended:
            return False
        if self.last_part is None:
            return (msn, index) == (0, 0)
        last_msn, last_index = self.last_part
        return (msn, index) in ((last_msn, last_index + 1), (last_msn + 1, 0))

    @property
    def advance_part_limit(self) -> int:
        # The rendered part target is rounded up (0.33334 for 1/3 s): a thousandth of slack
        # keeps 3 / 0.33334 = 8.9998 at the 9 parts the spec means.
        return math.floor(3 / self.part_target + 1e-3) if self.part_target < 1 else 3


@dataclass(frozen=True)
class DeliveryDirectives:
    msn: int
    part: int | None = None


def parse_live_edge(text: str) -> LiveEdge:
    """Read the live edge from a playlist :class:`~egress.hls.playlist.MediaPlaylist` rendered."""
    target_duration: int | None = None
    part_target: float | None = None
    media_sequence = 0
    complete_segments = 0
    parts_since_last_segment = 0
    parts_of_last_segment = 0
    ended = False
    for line in text.splitlines():
        if line.startswith("#EXT-X-TARGETDURATION:"):
            target_duration = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-PART-INF:PART-TARGET="):
            part_target = float(line.split("=", 1)[1])
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            media_sequence = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-PART:"):
            parts_since_last_segment += 1
        elif line.startswith("#EXTINF:"):
            complete_segments += 1
            parts_of_last_segment = parts_since_last_segment
            parts_since_last_segment = 0
        elif line == "#EXT-X-ENDLIST":
            ended = True
    if target_duration is None or part_target is None:
        raise ValueError("not an LL-HLS media playlist: no target duration or part target")
    last_complete = media_sequence + complete_segments - 1 if complete_segments else None
    last_part: tuple[int, int] | None
    if parts_since_last_segment:
        open_msn = media_sequence + complete_segments
        last_part = (open_msn, parts_since_last_segment - 1)
    elif last_complete is not None and parts_of_last_segment:
        last_part = (last_complete, parts_of_last_segment - 1)
    else:
        last_part = None
    return LiveEdge(target_duration, part_target, last_complete, last_part, ended)


def _decimal_integer(name: str, value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > MAX_DIRECTIVE_DIGITS:
        raise DirectiveError(f"{name} must be a decimal integer of at most 19 digits")
    return int(value)


def parse_delivery_directives(query: Mapping[str, str]) -> DeliveryDirectives | None:
    """The blocking-reload directives of a playlist request, or None for a plain reload."""
    msn_text = query.get("_HLS_msn")
    part_text = query.get("_HLS_part")
    if msn_text is None:
        if part_text is not None:
            raise DirectiveError("_HLS_part needs _HLS_msn")
        return None
    msn = _decimal_integer("_HLS_msn", msn_text)
    part = None if part_text is None else _decimal_integer("_HLS_part", part_text)
    return DeliveryDirectives(msn, part)


def check_not_too_far(directives: DeliveryDirectives, edge: LiveEdge) -> None:
    """Refuse a request further ahead than the spec lets a server wait for."""
    last_msn = edge.last_msn if edge.last_msn is not None else -1
    if directives.msn > last_msn + 2:
        raise DirectiveError(
            f"_HLS_msn={directives.msn} is more than two segments past the last ({last_msn})"
        )
    if directives.part is None:
        return
    limit = edge.advance_part_limit
    if edge.last_part is not None and directives.msn == edge.last_part[0]:
        ahead = directives.part - edge.last_part[1]
    elif directives.msn > last_msn:
        # A part of a segment that has not started: at least its index plus one parts ahead.
        ahead = directives.part + 1
    else:
        return
    if ahead > limit:
        raise DirectiveError(
            f"_HLS_part={directives.part} is more than {limit} parts past the last part"
        )


def is_satisfied(directives: DeliveryDirectives, edge: LiveEdge) -> bool:
    """Whether the playlist at ``edge`` answers the request (an ended one answers all)."""
    if edge.ended:
        return True
    if directives.part is None:
        return edge.last_complete_msn is not None and edge.last_complete_msn >= directives.msn
    if edge.last_part is None:
        return False
    # Ordered by (MSN, index): if segment M ended with fewer parts than asked for, the next
    # segment's first part answers, as the spec asks.
    return edge.last_part >= (directives.msn, directives.part)
