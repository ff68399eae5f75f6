"""The load generator's source tracks: a square tone, and paced frames for the replay encoder.

Imported only in client processes (it imports aiortc and PyAV).
"""

from __future__ import annotations

import asyncio
import struct
import time
from fractions import Fraction

from aiortc import AudioStreamTrack, VideoStreamTrack
from av import AudioFrame, VideoFrame


class ToneTrack(AudioStreamTrack):
    """A constant square tone; its amplitude sets the audio level the SFU ranks speakers by."""

    def __init__(self, amplitude: int) -> None:
        super().__init__()
        half = struct.pack("<4h", *[amplitude] * 4) + struct.pack("<4h", *[-amplitude] * 4)
        self.samples = half * 1000

    async def recv(self) -> AudioFrame:
        frame = await super().recv()
        assert isinstance(frame, AudioFrame)
        plane = frame.planes[0]
        plane.update(self.samples[: plane.buffer_size])
        return frame


class PacedTrack(VideoStreamTrack):
    """Paced frames for the replay encoder, which ignores their pixels."""

    def __init__(self, fps: int) -> None:
        super().__init__()
        self.fps = fps
        self.started: float | None = None
        self.index = 0

    async def recv(self) -> VideoFrame:
        now = time.monotonic()
        if self.started is None:
            self.started = now
        else:
            self.index += 1
            wait = self.started + self.index / self.fps - now
            if wait > 0:
                await asyncio.sleep(wait)
        frame = VideoFrame(width=16, height=16, format="yuv420p")
        frame.pts = self.index
        frame.time_base = Fraction(1, self.fps)
        return frame
