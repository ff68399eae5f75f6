"""A synthetic program: a moving test pattern and a tone, made in Python.

The picture is drawn straight into YUV 4:2:0 planes with numpy (a luma ramp, a white bar that
crosses the frame every two seconds, colours that change every second), so making it costs
little next to encoding it. The audio is a 440 Hz tone that beeps for 0.1 s each second.

That picture is far easier to encode than a camera's. ``detail=True`` adds what makes a camera
picture cost bits and motion search: a random texture that pans two pixels a frame, and sensor
grain (a bank of noise frames, cycled); the encoder benchmark uses it.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

import av
import numpy as np

from egress.program.source import ProgramTick

BAR_WIDTH_FRACTION = 1 / 16
TONE_HZ = 440.0
GRAIN_FRAMES = 8


class SyntheticProgram:
    def __init__(
        self,
        *,
        width: int = 1280,
        height: int = 720,
        frame_rate: int = 30,
        sample_rate: int = 48_000,
        duration: float = 10.0,
        detail: bool = False,
        seed: int = 14,
    ) -> None:
        if width % 2 or height % 2 or width < 16 or height < 16:
            raise ValueError("width and height must be even and at least 16")
        if sample_rate % frame_rate:
            raise ValueError("sample_rate must be a whole number of samples per frame")
        if duration <= 0:
            raise ValueError("duration must be positive")
        self.width = width
        self.height = height
        self.frame_rate = frame_rate
        self.sample_rate = sample_rate
        self.frame_count = round(duration * frame_rate)
        self._luma = np.tile(
            np.linspace(16, 235, width, dtype=np.float32).astype(np.uint8), (height, 1)
        )
        self._texture: np.ndarray | None = None
        self._grain: list[np.ndarray] = []
        if detail:
            random = np.random.default_rng(seed)
            self._luma //= 2
            self._texture = random.integers(0, 96, (height, 2 * width), dtype=np.uint8)
            self._grain = [
                random.integers(0, 8, (height, width), dtype=np.uint8) for _ in range(GRAIN_FRAMES)
            ]

    def ticks(self) -> Iterator[ProgramTick]:
        samples_per_frame = self.sample_rate // self.frame_rate
        for index in range(self.frame_count):
            yield ProgramTick(
                self._video_frame(index),
                self._audio_frame(index * samples_per_frame, samples_per_frame),
            )

    def _video_frame(self, index: int) -> av.VideoFrame:
        width, height = self.width, self.height
        planes = np.empty((height * 3 // 2, width), dtype=np.uint8)
        planes[:height] = self._luma
        if self._texture is not None:
            shift = (2 * index) % width
            planes[:height] += self._texture[:, shift : shift + width]
            planes[:height] += self._grain[index % GRAIN_FRAMES]
        bar = max(2, int(width * BAR_WIDTH_FRACTION))
        left = (index * width // (2 * self.frame_rate)) % (width - bar)
        planes[:height, left : left + bar] = 235
        # The rows below the luma hold both chroma planes; one value for both gives a tint.
        second = index // self.frame_rate
        planes[height:] = (64 + 40 * (second % 4)) & 0xFF
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts = index
        frame.time_base = Fraction(1, self.frame_rate)
        return frame

    def _audio_frame(self, first_sample: int, count: int) -> av.AudioFrame:
        times = (np.arange(count) + first_sample) / self.sample_rate
        level = np.where((times % 1.0) < 0.1, 0.3, 0.0)
        tone = (level * np.sin(2 * np.pi * TONE_HZ * times)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
        frame.sample_rate = self.sample_rate
        frame.pts = first_sample
        frame.time_base = Fraction(1, self.sample_rate)
        return frame
