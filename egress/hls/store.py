"""The origin's store: a folder per stream and rendition, written atomically.

Layout (the origin serves exactly these names, :mod:`egress.origin`)::

    <root>/<stream>/index.m3u8                  multivariant playlist
    <root>/<stream>/<rendition>/index.m3u8      media playlist
    <root>/<stream>/<rendition>/init.mp4        CMAF init segment
    <root>/<stream>/<rendition>/part<M>.<P>.m4s part P of segment M
    <root>/<stream>/<rendition>/seg<M>.m4s      segment M (its parts, concatenated)

Every file is written to a hidden temporary name in the same folder and renamed over its name,
so a reader sees the whole old file or the whole new one, never half of one. Parts are removed
once their segment leaves the playlist's window; segments stay (they are the recording).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
"A stream or rendition name: lowercase letters, digits, '-' and '_', at most 64."


def check_name(kind: str, name: str) -> str:
    if not NAME.fullmatch(name):
        raise ValueError(f"{kind} name {name!r} is not [a-z0-9][a-z0-9_-]{{0,63}}")
    return name


def part_name(msn: int, index: int) -> str:
    return f"part{msn}.{index}.m4s"


def segment_name(msn: int) -> str:
    return f"seg{msn}.m4s"


INIT_NAME = "init.mp4"
PLAYLIST_NAME = "index.m3u8"


def write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as file:
        file.write(data)
    os.replace(temporary, path)


class RenditionStore:
    """The files of one rendition of one stream."""

    def __init__(self, root: Path, stream: str, rendition: str) -> None:
        self.folder = root / check_name("stream", stream) / check_name("rendition", rendition)
        self.folder.mkdir(parents=True, exist_ok=True)

    def write_init(self, data: bytes) -> None:
        write_atomically(self.folder / INIT_NAME, data)

    def write_part(self, msn: int, index: int, data: bytes) -> None:
        write_atomically(self.folder / part_name(msn, index), data)

    def write_segment(self, msn: int, data: bytes) -> None:
        write_atomically(self.folder / segment_name(msn), data)

    def publish_playlist(self, text: str) -> None:
        write_atomically(self.folder / PLAYLIST_NAME, text.encode())

    def remove_parts(self, msn: int, count: int) -> None:
        for index in range(count):
            (self.folder / part_name(msn, index)).unlink(missing_ok=True)


def write_multivariant(root: Path, stream: str, text: str) -> None:
    folder = root / check_name("stream", stream)
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / PLAYLIST_NAME, text.encode())
