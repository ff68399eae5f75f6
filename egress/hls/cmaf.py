"""Splits the fragmented MP4 byte stream the muxer writes into an init segment and CMAF chunks.

FFmpeg's mp4 muxer with ``movflags=cmaf+frag_keyframe+empty_moov+default_base_moof`` and
``frag_duration`` writes ``ftyp`` and ``moov`` once, then one ``moof`` + ``mdat`` pair per
fragment, each as soon as the fragment closes (``flush_packets=1``). Each pair is one LL-HLS
part. :class:`ChunkSplitter` takes the bytes in whatever pieces the muxer writes them and hands
back whole boxes: the init section once, then each chunk with the number of samples of each
track in it (read from the ``moof``: ``traf`` → ``tfhd`` track id, ``trun`` sample count), which
the packager needs to know how long the part is and whether it starts with a keyframe.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass

BOX_HEADER = struct.Struct(">I4s")
MAX_BOX_SIZE = 64 * 1024 * 1024
"A larger box is not something this muxer writes for a part: refuse rather than buffer it."


class CmafError(ValueError):
    """Bytes that are not the fragmented MP4 this module expects."""


@dataclass(frozen=True)
class Chunk:
    """One ``moof`` + ``mdat``: an LL-HLS part."""

    data: bytes
    samples_per_track: dict[int, int]


def iter_boxes(
    data: bytes, start: int = 0, end: int | None = None
) -> Iterator[tuple[str, int, int]]:
    """Yield ``(type, payload_start, box_end)`` for each complete box in ``data[start:end]``."""
    end = len(data) if end is None else end
    offset = start
    while offset + BOX_HEADER.size <= end:
        size, kind = BOX_HEADER.unpack_from(data, offset)
        if size < BOX_HEADER.size or offset + size > end:
            raise CmafError(f"box {kind!r} at {offset} has a bad size {size}")
        yield kind.decode("latin-1"), offset + BOX_HEADER.size, offset + size
        offset += size


def samples_per_track(moof: bytes) -> dict[int, int]:
    """Samples of each track in a ``moof`` box (whole box, header included)."""
    counts: dict[int, int] = {}
    for kind, payload, end in iter_boxes(moof):
        if kind != "moof":
            continue
        for traf_kind, traf_payload, traf_end in iter_boxes(moof, payload, end):
            if traf_kind != "traf":
                continue
            track_id: int | None = None
            samples = 0
            for box_kind, box_payload, _ in iter_boxes(moof, traf_payload, traf_end):
                # Full boxes: 1 byte version, 3 bytes flags, then the fields.
                if box_kind == "tfhd":
                    (track_id,) = struct.unpack_from(">I", moof, box_payload + 4)
                elif box_kind == "trun":
                    (count,) = struct.unpack_from(">I", moof, box_payload + 4)
                    samples += count
            if track_id is None:
                raise CmafError("traf without tfhd")
            counts[track_id] = counts.get(track_id, 0) + samples
    return counts


class ChunkSplitter(io.RawIOBase):
    """A write-only file for the muxer that collects the init section and whole chunks."""

    def __init__(self) -> None:
        super().__init__()
        self._pending = bytearray()
        self._init = bytearray()
        self.init_segment: bytes | None = None
        self._moof: bytes | None = None
        self._chunks: list[Chunk] = []

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        # Not seekable: the muxer then never goes back to patch a box it already wrote.
        return False

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._pending += data
        self._take_boxes()
        return len(data)

    def take_chunks(self) -> list[Chunk]:
        """The chunks completed since the last call, oldest first."""
        chunks, self._chunks = self._chunks, []
        return chunks

    def _take_boxes(self) -> None:
        # Bounded: each pass consumes one whole box from the pending bytes, or stops.
        while len(self._pending) >= BOX_HEADER.size:
            size, kind_bytes = BOX_HEADER.unpack_from(self._pending, 0)
            if size < BOX_HEADER.size or size > MAX_BOX_SIZE:
                raise CmafError(f"box {kind_bytes!r} has a size this packager refuses: {size}")
            if len(self._pending) < size:
                return
            box = bytes(self._pending[:size])
            del self._pending[:size]
            self._take_box(kind_bytes.decode("latin-1"), box)

    def _take_box(self, kind: str, box: bytes) -> None:
        if kind in ("ftyp", "moov"):
            self._init += box
            if kind == "moov":
                self.init_segment = bytes(self._init)
        elif kind == "moof":
            if self.init_segment is None:
                raise CmafError("moof before the init section")
            self._moof = box
        elif kind == "mdat":
            if self._moof is None:
                raise CmafError("mdat without a moof")
            self._chunks.append(Chunk(self._moof + box, samples_per_track(self._moof)))
            self._moof = None
        # Anything else (styp, sidx, the mfra index written on close) is not part of a chunk.
