"""Synthetic media for aiortc test clients: a tone whose RFC 6464 level a test controls, and
flat-colour video whose pictures say which publisher they came from."""

from __future__ import annotations

import struct

from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from av import AudioFrame, VideoFrame


class ToneTrack(AudioStreamTrack):
    """A square wave whose amplitude (0 = silence, level 127) can be changed at any time."""

    def __init__(self) -> None:
        super().__init__()
        self.amplitude = 0

    async def recv(self) -> AudioFrame:
        frame = await super().recv()
        assert isinstance(frame, AudioFrame)
        if self.amplitude:
            plane = frame.planes[0]
            half = struct.pack("<4h", *[self.amplitude] * 4) + struct.pack(
                "<4h", *[-self.amplitude] * 4
            )
            plane.update((half * (plane.buffer_size // len(half) + 1))[: plane.buffer_size])
        return frame


class FlatVideoTrack(VideoStreamTrack):
    """Flat-colour frames of one size, so each participant's pictures are recognisable."""

    def __init__(self, luma: int, width: int = 160, height: int = 120) -> None:
        super().__init__()
        self.luma, self.width, self.height = luma, width, height

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=self.width, height=self.height, format="yuv420p")
        for plane, value in zip(frame.planes, (self.luma, 128, 128), strict=True):
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts = pts
        frame.time_base = time_base
        return frame
