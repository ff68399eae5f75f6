"""The seam between what makes the program and what encodes it.

A :class:`ProgramSource` yields one :class:`ProgramTick` per video frame: the frame, and the
audio that plays during it. Timestamps start at 0 and advance by exactly one frame (video, in
``1/frame_rate``) and by the number of samples (audio, in ``1/sample_rate``), so the packager
never has to repair them. Phase 1 feeds it :class:`~egress.program.synthetic.SyntheticProgram`;
phase 2 puts here a participant of the SFU that subscribes to the stage, decodes and lays it
out (active speaker, speaker plus screen, grid) and mixes the panelists' audio.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import av


@dataclass(frozen=True)
class ProgramTick:
    video: av.VideoFrame
    "One frame at the program's full size (the top rung), ``pts`` in ``1/frame_rate``."
    audio: av.AudioFrame
    "The audio during that frame, ``pts`` in samples."


class ProgramSource(Protocol):
    width: int
    height: int
    frame_rate: int
    sample_rate: int

    def ticks(self) -> Iterator[ProgramTick]:
        """Ticks from time 0, one per video frame; ends when the program does."""
        ...
