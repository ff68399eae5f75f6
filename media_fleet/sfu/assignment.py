"""Which participant feeds which slot of one subscriber: pure functions, no aiortc.

Camera slots follow the last-N rule:

- the candidates are the other participants with a camera, the most recent active
  speakers first (most recent first), then everyone else in join order;
- slot 0 is the **speaker slot**: the most recent speaker other than the subscriber (or the
  first candidate when nobody has spoken); it always gets the full-quality layer;
- the other slots are thumbnails and keep their occupants while they stay among the first
  ``len(slots)`` candidates, so tiles do not jump around; a participant promoted to slot 0
  leaves their thumbnail slot to the one they replaced there (a swap), and newcomers fill
  the lowest free slots.

Audio slots carry the loudest other participants, also kept in place while they stay among
the loudest. The screen slot carries the most recent screen sharer other than the subscriber.
"""

from collections.abc import Hashable, Sequence
from typing import TypeVar

Key = TypeVar("Key", bound=Hashable)


def assign_stable(previous: Sequence[Key | None], chosen: Sequence[Key]) -> list[Key | None]:
    """Put ``chosen`` (at most ``len(previous)``) into slots, keeping earlier positions."""
    slots: list[Key | None] = [key if key in chosen else None for key in previous]
    placed = {key for key in slots if key is not None}
    free = (index for index, key in enumerate(slots) if key is None)
    for key in chosen:
        if key not in placed:
            slots[next(free)] = key
    return slots


def assign_cameras(
    previous: Sequence[Key | None],
    subscriber: Key,
    recent_speakers: Sequence[Key],
    join_order: Sequence[Key],
    has_camera: set[Key],
) -> list[Key | None]:
    """The camera-slot occupants for ``subscriber``; slot 0 is the speaker slot."""
    if not previous:
        return []
    ranked: list[Key] = []
    for key in (*recent_speakers, *join_order):
        if key != subscriber and key in has_camera and key not in ranked:
            ranked.append(key)
    chosen = ranked[: len(previous)]
    if not chosen:
        return [None] * len(previous)
    speaker = chosen[0]
    thumbnails: list[Key | None] = [None if key == speaker else key for key in previous[1:]]
    if previous[0] is not None and previous[0] != speaker and speaker in previous[1:]:
        # swap: the previous speaker takes the new speaker's thumbnail slot
        thumbnails[list(previous[1:]).index(speaker)] = previous[0]
    return [speaker, *assign_stable(thumbnails, [key for key in chosen if key != speaker])]
