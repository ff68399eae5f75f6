"""Shared pieces for the broadcast tests: a small ladder and a short synthetic program."""

from __future__ import annotations

from egress.hls.packager import PackagerSettings, Rendition
from egress.program.synthetic import SyntheticProgram

# Small encodes: the machine has two cores and other sessions run tests on them.
SMALL_LADDER = (Rendition("360p", 640, 360, 800_000), Rendition("180p", 320, 180, 300_000))


def small_settings(**changes: object) -> PackagerSettings:
    return PackagerSettings(ladder=SMALL_LADDER, **changes)  # type: ignore[arg-type]


def small_program(duration: float) -> SyntheticProgram:
    return SyntheticProgram(width=640, height=360, duration=duration)
