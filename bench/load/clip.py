"""The pre-encoded VP8 clip that every publisher replays, and the encoder that replays it.

Encoding live VP8 for tens of publishers would drown the load generator's core, so the clip is
encoded once per run and each client process replaces ``aiortc.rtcrtpsender.get_encoder`` (in
its own process only) with a :class:`ReplayEncoder`-returning factory.
"""

from __future__ import annotations

import os
import secrets
import statistics
import struct
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

STAMP = struct.Struct("!Q")
"The last 8 bytes of every replayed frame: ``time.monotonic_ns()`` when it was handed over."
CLIP_SECONDS = 2.0


def encode_clip(
    path: Path, *, width: int, height: int, fps: int, bitrate: int, seconds: float
) -> dict[str, Any]:
    """Encode a moving pattern to VP8 once (a keyframe first, none after) into ``path``.

    The pattern is a diagonal gradient sliding 8 pixels a frame, with 3 bits of noise XORed
    in, so that libvpx's CBR at ``bitrate`` spends about its budget on every frame. The file
    is a sequence of ``(u32 length, u8 keyframe, bytes)`` records; replayed in a loop, the
    clip gives a keyframe every ``seconds``.
    """
    import av

    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.bit_rate = bitrate
    codec.framerate = Fraction(fps)
    codec.time_base = Fraction(1, fps)
    count = int(fps * seconds)
    codec.gop_size = count
    codec.qmin, codec.qmax = 2, 56
    codec.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "minrate": str(bitrate),
        "maxrate": str(bitrate),
        "bufsize": str(bitrate),
        "undershoot-pct": "95",
        "overshoot-pct": "5",
    }
    row = bytes((x * 3) & 0xFF for x in range(width + 2 * height + 8 * count))
    grey = bytes([128]) * (width * height // 4)
    frames: list[tuple[bytes, bool]] = []
    for index in range(count + 1):
        if index < count:
            luma = b"".join(
                row[2 * r + 8 * index : 2 * r + 8 * index + width] for r in range(height)
            )
            noise = bytes(b & 7 for b in os.urandom(width * height))
            mixed = int.from_bytes(luma) ^ int.from_bytes(noise)
            frame = av.VideoFrame(width=width, height=height, format="yuv420p")
            frame.planes[0].update(mixed.to_bytes(width * height))
            frame.planes[1].update(grey)
            frame.planes[2].update(grey)
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            packets = codec.encode(frame)
        else:
            packets = codec.encode(None)  # flush (lag-in-frames 0 holds nothing back)
        for packet in packets:
            frames.append((bytes(packet), bool(packet.is_keyframe)))
    frames = frames[:count]
    with path.open("wb") as out:
        for data, key in frames:
            out.write(struct.pack("!IB", len(data), key) + data)
    from aiortc.codecs.vpx import Vp8Encoder

    sizes = [len(data) for data, _ in frames]
    packets_per_frame = [len(Vp8Encoder._packetize(data, 0)) for data, _ in frames]
    return {
        "frames": len(frames),
        "keyframes": sum(key for _, key in frames),
        "mean_frame_bytes": statistics.mean(sizes),
        "keyframe_bytes": [len(d) for d, k in frames if k],
        "mean_packets_per_frame": statistics.mean(packets_per_frame),
        "packets_per_second": statistics.mean(packets_per_frame) * fps,
    }


def read_clip(path: Path) -> list[tuple[bytes, bool]]:
    data = path.read_bytes()
    frames, position = [], 0
    while position < len(data):
        length, key = struct.unpack_from("!IB", data, position)
        position += 5
        frames.append((data[position : position + length], bool(key)))
        position += length
    return frames


@dataclass
class ReplayCounters:
    """What the replay encoders of one process sent (read by the client's ``mark``)."""

    video_frames_sent: int = 0
    video_packets_sent: int = 0
    keyframes_forced: int = 0


REPLAY = ReplayCounters()
"The default counters of this process."


def install_replay_encoder(
    frames: list[tuple[bytes, bool]], counters: ReplayCounters = REPLAY, *, stamp: bool = True
) -> None:
    """In this (client) process only: every VP8 sender replays ``frames``.

    ``stamp`` overwrites the end of each frame with the send time. A forwarding SFU never
    looks inside a frame; a decoder does, and refuses a frame so damaged (``stamp=False`` for
    a target that decodes).
    """
    import aiortc.rtcrtpsender
    from aiortc.codecs.base import Encoder
    from aiortc.codecs.vpx import Vp8Encoder

    keyframe_index = next((i for i, (_, key) in enumerate(frames) if key), 0)
    original = aiortc.rtcrtpsender.get_encoder

    class ReplayEncoder(Encoder):
        """Returns the stored frames in a loop; a forced keyframe jumps to the keyframe."""

        def __init__(self) -> None:
            self.position = secrets.randbelow(len(frames))
            while not frames[self.position][1]:  # start on a keyframe
                self.position = (self.position + 1) % len(frames)
            self.picture_id = secrets.randbelow(1 << 15)
            self.target_bitrate = 0  # aiortc sets it from REMB; a replay ignores it

        def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
            if force_keyframe:
                self.position = keyframe_index
                counters.keyframes_forced += 1
            data = frames[self.position][0]
            self.position = (self.position + 1) % len(frames)
            if stamp:
                data = data[: -STAMP.size] + STAMP.pack(time.monotonic_ns())
            payloads = Vp8Encoder._packetize(data, self.picture_id)
            self.picture_id = (self.picture_id + 1) % (1 << 15)
            counters.video_frames_sent += 1
            counters.video_packets_sent += len(payloads)
            return payloads, int(frame.pts * 90000 * frame.time_base)

        def pack(self, packet: Any) -> tuple[list[bytes], int]:
            raise NotImplementedError

    def get_encoder(codec: Any) -> Encoder:
        if codec.mimeType.lower() == "video/vp8":
            return ReplayEncoder()
        return original(codec)

    aiortc.rtcrtpsender.get_encoder = get_encoder
