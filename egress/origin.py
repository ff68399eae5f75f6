"""The LL-HLS origin: serves the store the packager writes, with blocking playlist reload.

Routes (anything else is 404)::

    GET /live/<stream>/index.m3u8                       multivariant playlist
    GET /live/<stream>/<rendition>/index.m3u8           media playlist (_HLS_msn, _HLS_part)
    GET /live/<stream>/<rendition>/init.mp4             init segment
    GET /live/<stream>/<rendition>/part<M>.<P>.m4s      part (held while it is the hinted next one)
    GET /live/<stream>/<rendition>/seg<M>.m4s           segment

Blocking reload (RFC 8216bis 6.2.5.2): a playlist request with delivery directives is held
until the published playlist contains what it asks for, then answered with that playlist. It
is answered 400 when the directives are malformed or ask for more than the spec lets a server
wait for (see :mod:`egress.hls.live_edge`), and 503 when three target durations pass without
it (the player then asks again) or when ``max_held_requests`` are already held. A request for
the part a preload hint names (the next part, or the first of the next segment) is held the
same way, bounded the same way; any other missing part is 404 at once.

Watching: the origin shares no memory with the packager. One :class:`PlaylistWatch` per media
playlist, alive while requests wait on it, polls the playlist file's identity (the packager
replaces it by a rename, so each version is a new inode) every ``poll_interval`` and wakes the
waiting requests; a request is answered within about one poll interval of its part appearing.

Cache headers, for a CDN in front (CloudFront, or nginx in the twin):

- a plain playlist: ``max-age=1``: it changes with every part;
- a blocking playlist response: ``max-age`` of the target duration: its URL names the part it
  waited for, so a cached copy is still a correct answer to that URL, a little further from
  the edge;
- init, parts and segments: a year, ``immutable``: a name is never reused for other bytes
  (a restarted worker must continue the media sequence, as the spec requires, and name a new
  init segment);
- 404: ``max-age=1`` (a short negative cache); 400 and 503: ``no-store``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from egress.hls.live_edge import (
    DeliveryDirectives,
    DirectiveError,
    LiveEdge,
    check_not_too_far,
    is_satisfied,
    parse_delivery_directives,
    parse_live_edge,
)
from egress.hls.store import INIT_NAME, NAME, PLAYLIST_NAME

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
MEDIA_TYPE = "video/mp4"
IMMUTABLE = "public, max-age=31536000, immutable"
PART_FILE = re.compile(r"part(\d{1,19})\.(\d{1,6})\.m4s")
SEGMENT_FILE = re.compile(r"seg\d{1,19}\.m4s")


@dataclass(frozen=True)
class OriginSettings:
    root: Path
    max_held_requests: int = 2_000
    "Blocked requests held at once, over all playlists; more are answered 503."
    poll_interval: float = 0.01
    block_timeout_target_durations: float = 3.0


class PlaylistWatch:
    """The published version of one media playlist, and a wake-up for those waiting on it."""

    def __init__(self, path: Path, poll_interval: float) -> None:
        self.path = path
        self._poll_interval = poll_interval
        self._identity: tuple[int, int, int] | None = None
        self._text = ""
        self._edge: LiveEdge | None = None
        self._changed = asyncio.Event()
        self._waiters = 0
        self._poller: asyncio.Task[None] | None = None

    def read(self) -> tuple[str, LiveEdge] | None:
        """The playlist as published now (re-read only when the file was replaced)."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        identity = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if identity != self._identity:
            text = self.path.read_text()
            self._text, self._edge, self._identity = text, parse_live_edge(text), identity
        assert self._edge is not None
        return self._text, self._edge

    async def wait_until(
        self, ready: Callable[[LiveEdge], bool], deadline: float
    ) -> tuple[str, LiveEdge] | None:
        """The playlist once ``ready`` holds for it, or None at ``deadline`` (monotonic)."""
        self._waiters += 1
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll())
        try:
            # Bounded by the deadline: each pass waits for a change, at most until then.
            while True:
                current = self.read()
                if current is not None and ready(current[1]):
                    return current
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                changed = self._changed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), remaining)
        finally:
            self._waiters -= 1

    async def _poll(self) -> None:
        # Runs only while someone waits; a new waiter starts it again.
        while self._waiters > 0:
            await asyncio.sleep(self._poll_interval)
            before = self._identity
            with contextlib.suppress(FileNotFoundError, ValueError):
                self.read()
            if self._identity != before:
                self._changed.set()
                self._changed = asyncio.Event()


class Origin:
    def __init__(self, settings: OriginSettings) -> None:
        self.settings = settings
        self._watches: dict[Path, PlaylistWatch] = {}
        self.held = 0
        self.app = Starlette(
            routes=[
                Route("/live/{stream}/index.m3u8", self.multivariant),
                Route("/live/{stream}/{rendition}/index.m3u8", self.media_playlist),
                Route("/live/{stream}/{rendition}/{name}", self.media_file),
            ]
        )

    def _folder(self, request: Request) -> Path | None:
        """The store folder a request names, or None if a name is not one the store uses."""
        parts = [request.path_params["stream"]]
        if "rendition" in request.path_params:
            parts.append(request.path_params["rendition"])
        if not all(NAME.fullmatch(part) for part in parts):
            return None
        return self.settings.root.joinpath(*parts)

    def _published(self, folder: Path) -> tuple[PlaylistWatch, tuple[str, LiveEdge]] | None:
        """The watch on a rendition's media playlist and its published version, if any."""
        path = folder / PLAYLIST_NAME
        if not path.is_file():
            # Before making a watch: only playlists that exist get one, so they stay bounded.
            return None
        watch = self._watches.get(path)
        if watch is None:
            watch = self._watches[path] = PlaylistWatch(path, self.settings.poll_interval)
        current = watch.read()
        return None if current is None else (watch, current)

    async def multivariant(self, request: Request) -> Response:
        folder = self._folder(request)
        if folder is None or not (folder / PLAYLIST_NAME).is_file():
            return not_found()
        return playlist_response((folder / PLAYLIST_NAME).read_text(), "public, max-age=1")

    async def media_playlist(self, request: Request) -> Response:
        folder = self._folder(request)
        if folder is None:
            return not_found()
        try:
            directives = parse_delivery_directives(request.query_params)
        except DirectiveError as error:
            return bad_request(str(error))
        published = self._published(folder)
        if published is None:
            return not_found()
        watch, (text, edge) = published
        if directives is None:
            return playlist_response(text, "public, max-age=1")
        try:
            check_not_too_far(directives, edge)
        except DirectiveError as error:
            return bad_request(str(error))
        if not is_satisfied(directives, edge):
            answer = await self._hold(watch, directives, edge)
            if isinstance(answer, Response):
                return answer
            text, edge = answer
        return playlist_response(text, f"public, max-age={edge.target_duration}")

    async def media_file(self, request: Request) -> Response:
        folder = self._folder(request)
        name = request.path_params["name"]
        part = PART_FILE.fullmatch(name)
        if folder is None or not (name == INIT_NAME or part or SEGMENT_FILE.fullmatch(name)):
            return not_found()
        path = folder / name
        if not path.is_file() and part is not None:
            # The part a preload hint names: hold it like a blocking reload of that part.
            published = self._published(folder)
            if published is None:
                return not_found()
            watch, (_, edge) = published
            wanted = DeliveryDirectives(int(part.group(1)), int(part.group(2)))
            if not edge.could_be_next_part(wanted.msn, wanted.part or 0):
                return not_found()
            answer = await self._hold(watch, wanted, edge)
            if isinstance(answer, Response):
                return answer
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return not_found()
        return Response(data, media_type=MEDIA_TYPE, headers={"Cache-Control": IMMUTABLE})

    async def _hold(
        self, watch: PlaylistWatch, directives: DeliveryDirectives, edge: LiveEdge
    ) -> tuple[str, LiveEdge] | Response:
        if self.held >= self.settings.max_held_requests:
            return unavailable("too many blocked requests held; retry", retry_after=1)
        timeout = self.settings.block_timeout_target_durations * edge.target_duration
        self.held += 1
        try:
            answer = await watch.wait_until(
                lambda e: is_satisfied(directives, e), time.monotonic() + timeout
            )
        finally:
            self.held -= 1
        if answer is None:
            return unavailable("the requested part did not appear in time")
        return answer


def playlist_response(text: str, cache_control: str) -> Response:
    return Response(text, media_type=PLAYLIST_TYPE, headers={"Cache-Control": cache_control})


def not_found() -> Response:
    return PlainTextResponse("not found\n", 404, headers={"Cache-Control": "public, max-age=1"})


def bad_request(reason: str) -> Response:
    return PlainTextResponse(f"{reason}\n", 400, headers={"Cache-Control": "no-store"})


def unavailable(reason: str, retry_after: int | None = None) -> Response:
    headers = {"Cache-Control": "no-store"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return PlainTextResponse(f"{reason}\n", 503, headers=headers)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Serve a broadcast store as LL-HLS.")
    parser.add_argument("--root", type=Path, required=True, help="the packager's store")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--max-held", type=int, default=OriginSettings.max_held_requests)
    args = parser.parse_args(argv)
    origin = Origin(OriginSettings(root=args.root, max_held_requests=args.max_held))
    uvicorn.run(origin.app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
