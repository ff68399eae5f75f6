"""Encodes a program into an ABR ladder of CMAF renditions, published as LL-HLS parts.

For each rung (:class:`Rendition`), one PyAV mp4 muxer with an H.264 (libx264) and an AAC
track writes into a :class:`~egress.hls.cmaf.ChunkSplitter`; each CMAF chunk it hands back is
written to the store as a part, the playlist is republished, and when a chunk starts with a
keyframe the parts before it are closed into a segment.

Encoder choices (docs/broadcast.md):

- ``tune=zerolatency``: no B-frames, no lookahead, no frame-threading delay. Without it x264
  holds tens of frames before the first packet comes out, which alone is longer than a part.
- ``preset=veryfast`` (a setting): measured here at 0.39 core for 720p; ``ultrafast`` halves
  that but drops CABAC and most motion search, costing far more bits for the same picture, and
  bits are what the CDN bills.
- A keyframe exactly at each segment start and nowhere else: the GOP is the segment
  (``g`` = ``keyint_min`` = frames per segment, scene-cut detection off, and the frame at each
  segment start forced to an I-frame), so every segment, and its first part, is independent.
- A capped bitrate (VBV ``maxrate`` with a one-second buffer), so BANDWIDTH in the
  multivariant playlist, the rung's peak, is an upper bound a player can trust.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
from av.video.frame import PictureType

from egress.hls.cmaf import ChunkSplitter
from egress.hls.playlist import MediaPlaylist, MultivariantPlaylist, Part, Variant
from egress.hls.store import (
    PLAYLIST_NAME,
    RenditionStore,
    part_name,
    segment_name,
    write_multivariant,
)
from egress.program.source import ProgramSource, ProgramTick

log = logging.getLogger(__name__)

VIDEO_TRACK_ID = 1
"The muxer numbers tracks in the order they are added: video first."
AAC_LC_CODEC = "mp4a.40.2"


def sps_profile(extradata: bytes) -> bytes:
    """profile_idc, the constraint flags and level_idc: from avcC, or the SPS in Annex B."""
    if len(extradata) >= 4 and extradata[0] == 1:
        return extradata[1:4]
    # Annex B: start codes, then NAL units; the SPS is type 7, its three bytes follow the header.
    for unit in extradata.split(b"\x00\x00\x01"):
        if len(unit) >= 4 and unit[0] & 0x1F == 7:
            return unit[1:4]
    raise RuntimeError("the encoder has not produced its sequence parameter set yet")


@dataclass(frozen=True)
class Rendition:
    name: str
    width: int
    height: int
    video_bitrate: int
    "Target bits per second; also the VBV maxrate."


LADDER = (
    Rendition("720p", 1280, 720, 2_500_000),
    Rendition("360p", 640, 360, 800_000),
)


@dataclass(frozen=True)
class PackagerSettings:
    part_duration: float = 1 / 3
    "Seconds per LL-HLS part, 0.2 to 1 (0.33 to 0.5 is the range the design aims at)."
    segment_duration: float = 2.0
    "Seconds per segment (and per GOP), 1 to 6, a whole number of parts."
    preset: str = "veryfast"
    tune: str = "zerolatency"
    audio_bitrate: int = 96_000
    window_segments: int = 6
    ladder: tuple[Rendition, ...] = LADDER

    def frames_per_part(self, frame_rate: int) -> int:
        return round(self.part_duration * frame_rate)

    def frames_per_segment(self, frame_rate: int) -> int:
        return round(self.segment_duration * frame_rate)

    def check(self, frame_rate: int) -> None:
        """Refuse settings the playlist rules cannot hold (ValueError)."""
        if not 0.2 <= self.part_duration <= 1.0:
            raise ValueError("part_duration must be within 0.2 to 1 s")
        if not 1.0 <= self.segment_duration <= 6.0:
            raise ValueError("segment_duration must be within 1 to 6 s")
        part, segment = self.frames_per_part(frame_rate), self.frames_per_segment(frame_rate)
        if abs(part / frame_rate - self.part_duration) > 1e-3 or segment % part:
            raise ValueError(
                "part_duration must be whole frames and segment_duration a whole number of parts"
            )
        if not self.ladder or len({r.name for r in self.ladder}) != len(self.ladder):
            raise ValueError("the ladder needs at least one rendition, with distinct names")


@dataclass(frozen=True)
class PublishedPart:
    rendition: str
    msn: int
    index: int
    duration: float
    independent: bool
    size: int
    published_at: float
    "time.monotonic() when the playlist naming it was published."


@dataclass
class _OpenSegment:
    msn: int = -1
    chunks: list[bytes] = field(default_factory=list)


class RenditionEncoder:
    """One rung: encoder, muxer, splitter, playlist and store."""

    def __init__(
        self,
        rendition: Rendition,
        settings: PackagerSettings,
        store: RenditionStore,
        *,
        frame_rate: int,
        sample_rate: int,
        start_time: datetime,
        on_part: Callable[[PublishedPart], None],
    ) -> None:
        self.rendition = rendition
        self._settings = settings
        self._store = store
        self._frame_rate = frame_rate
        self._frames_per_part = settings.frames_per_part(frame_rate)
        self._frames_per_segment = settings.frames_per_segment(frame_rate)
        self._start_time = start_time
        self._on_part = on_part
        self._splitter = ChunkSplitter()
        frag_microseconds = self._frames_per_part * 1_000_000 // frame_rate
        self._container = av.open(
            self._splitter,
            mode="w",
            format="mp4",
            options={
                "movflags": "cmaf+frag_keyframe+empty_moov+default_base_moof",
                "frag_duration": str(frag_microseconds),
                "flush_packets": "1",
            },
        )
        # Leave the stream's time base to the muxer: setting it here left every video
        # timestamp at 0 in the output (PyAV 18), and fragments then never closed on duration.
        self._video = self._container.add_stream("libx264", rate=frame_rate)
        self._video.width = rendition.width
        self._video.height = rendition.height
        self._video.pix_fmt = "yuv420p"
        self._video.bit_rate = rendition.video_bitrate
        gop = str(self._frames_per_segment)
        self._video.options = {
            "preset": settings.preset,
            "tune": settings.tune,
            "g": gop,
            "keyint_min": gop,
            "sc_threshold": "0",
            "maxrate": str(rendition.video_bitrate),
            "bufsize": str(rendition.video_bitrate),
        }
        self._audio = self._container.add_stream("aac", rate=sample_rate)
        self._audio.layout = "stereo"
        self._audio.bit_rate = settings.audio_bitrate
        self._playlist = MediaPlaylist(
            init_uri="init.mp4",
            target_duration=max(1, round(settings.segment_duration + 0.499)),
            part_target=self._frames_per_part / frame_rate,
            part_uri=part_name,
            window_segments=settings.window_segments,
        )
        # Keyframe flag of each video packet muxed, oldest first, until its chunk comes out.
        self._video_packets: deque[bool] = deque()
        self._segment = _OpenSegment()
        self._frames_in = 0
        self._init_written = False
        self.audio_only_chunks = 0

    @property
    def codecs(self) -> str:
        """The RFC 6381 codecs string: profile, constraints and level from the encoder's SPS."""
        profile = sps_profile(self._video.codec_context.extradata or b"")
        return f"avc1.{profile.hex()},{AAC_LC_CODEC}"

    @property
    def variant(self) -> Variant:
        return Variant(
            uri=f"{self.rendition.name}/{PLAYLIST_NAME}",
            # Peak: the VBV cap, the audio, and about 10 % for the CMAF boxes.
            bandwidth=int((self.rendition.video_bitrate + self._settings.audio_bitrate) * 1.1),
            codecs=self.codecs,
            width=self.rendition.width,
            height=self.rendition.height,
            frame_rate=self._frame_rate,
        )

    @property
    def has_complete_segment(self) -> bool:
        return any(segment.complete for segment in self._playlist.segments)

    def encode(self, tick: ProgramTick) -> None:
        frame = tick.video
        if (frame.width, frame.height) != (self.rendition.width, self.rendition.height):
            frame = frame.reformat(
                width=self.rendition.width, height=self.rendition.height, format="yuv420p"
            )
            frame.pts = tick.video.pts
            frame.time_base = tick.video.time_base
        frame.pict_type = (
            PictureType.I if self._frames_in % self._frames_per_segment == 0 else PictureType.NONE
        )
        self._frames_in += 1
        for packet in self._video.encode(frame):
            self._video_packets.append(packet.is_keyframe)
            self._container.mux(packet)
        for packet in self._audio.encode(tick.audio):
            self._container.mux(packet)
        self._publish_chunks()

    def finish(self) -> None:
        """Flush the encoders, close the last segment, and end the playlist."""
        for packet in self._video.encode(None):
            self._video_packets.append(packet.is_keyframe)
            self._container.mux(packet)
        for packet in self._audio.encode(None):
            self._container.mux(packet)
        self._container.close()
        self._publish_chunks()
        if self._segment.chunks:
            self._close_segment()
        self._playlist.end()
        self._store.publish_playlist(self._playlist.render())

    def _publish_chunks(self) -> None:
        if not self._init_written and self._splitter.init_segment is not None:
            self._store.write_init(self._splitter.init_segment)
            self._init_written = True
        for chunk in self._splitter.take_chunks():
            video_samples = chunk.samples_per_track.get(VIDEO_TRACK_ID, 0)
            if video_samples == 0 or video_samples > len(self._video_packets):
                # Only the muxer's last flush can leave audio alone; it is not a part.
                self.audio_only_chunks += 1
                continue
            keyframes = [self._video_packets.popleft() for _ in range(video_samples)]
            self._publish_part(chunk.data, video_samples / self._frame_rate, keyframes[0])

    def _publish_part(self, data: bytes, duration: float, independent: bool) -> None:
        if independent and self._segment.chunks:
            self._close_segment()
        when = self._start_time + timedelta(seconds=self._segment_start_seconds())
        msn, index = self._playlist.next_part_position()
        self._store.write_part(msn, index, data)
        self._playlist.add_part(
            Part(part_name(msn, index), duration, independent), program_date_time=when
        )
        self._segment.msn = msn
        self._segment.chunks.append(data)
        self._store.publish_playlist(self._playlist.render())
        self._on_part(
            PublishedPart(
                self.rendition.name, msn, index, duration, independent, len(data), time.monotonic()
            )
        )

    def _segment_start_seconds(self) -> float:
        parts_before = sum(len(s.parts) for s in self._playlist.segments if s.complete)
        return parts_before * self._frames_per_part / self._frame_rate

    def _close_segment(self) -> None:
        self._store.write_segment(self._segment.msn, b"".join(self._segment.chunks))
        before = {segment.msn: len(segment.parts) for segment in self._playlist.segments}
        self._playlist.close_segment(segment_name(self._segment.msn))
        after = {segment.msn for segment in self._playlist.segments}
        for msn, parts in before.items():
            if msn not in after:
                self._store.remove_parts(msn, parts)
        self._segment = _OpenSegment()


class ProgramPackager:
    """The whole ladder: every rung encodes every tick of the program."""

    def __init__(
        self,
        root: Path,
        stream: str,
        source: ProgramSource,
        settings: PackagerSettings | None = None,
        *,
        start_time: datetime | None = None,
        max_parts_kept: int = 10_000,
    ) -> None:
        self.settings = settings or PackagerSettings()
        self.settings.check(source.frame_rate)
        self._root = root
        self._stream = stream
        self._source = source
        self.published: deque[PublishedPart] = deque(maxlen=max_parts_kept)
        start = start_time or datetime.now(UTC)
        self.renditions = [
            RenditionEncoder(
                rendition,
                self.settings,
                RenditionStore(root, stream, rendition.name),
                frame_rate=source.frame_rate,
                sample_rate=source.sample_rate,
                start_time=start,
                on_part=self.published.append,
            )
            for rendition in self.settings.ladder
        ]
        self._multivariant_written = False

    def run(self, *, realtime: bool = False, stop: threading.Event | None = None) -> int:
        """Encode the program to its end (or until ``stop``); returns the frames encoded.

        ``realtime`` paces the frames to the wall clock, as a live source would deliver them.
        """
        started = time.monotonic()
        frames = 0
        # Bounded by the source, which ends (the synthetic program has a duration).
        for tick in self._source.ticks():
            if stop is not None and stop.is_set():
                break
            if realtime:
                due = started + frames / self._source.frame_rate
                time.sleep(max(0.0, due - time.monotonic()))
            for encoder in self.renditions:
                encoder.encode(tick)
            frames += 1
            # Once every rung has a complete segment: a player that follows the link earlier
            # finds a playlist of parts only, which hls.js takes for an empty level.
            if not self._multivariant_written and all(
                encoder.has_complete_segment for encoder in self.renditions
            ):
                self._write_multivariant()
        for encoder in self.renditions:
            encoder.finish()
        if not self._multivariant_written and all(e.has_complete_segment for e in self.renditions):
            self._write_multivariant()  # a program shorter than one segment
        return frames

    def _write_multivariant(self) -> None:
        variants = tuple(encoder.variant for encoder in self.renditions)
        write_multivariant(self._root, self._stream, MultivariantPlaylist(variants).render())
        self._multivariant_written = True
