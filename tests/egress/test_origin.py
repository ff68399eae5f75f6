"""The origin as a real process on a real socket: blocking reload answered as soon as the part
appears and not before, its timeout, its 400s and its cap, preload-hinted parts, cache headers,
and names it refuses. A publisher in the test writes the store with the packager's own classes,
so the moment each part appears is known."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from egress.hls.playlist import MediaPlaylist, Part
from egress.hls.store import RenditionStore, part_name, segment_name, write_multivariant
from tests.egress.processes import origin_process

PART = 0.25
PARTS_PER_SEGMENT = 4
TARGET = 1  # one-second segments: the blocking timeout is 3 s
MAX_HELD = 2


class Publisher:
    """Writes a rendition's store as the packager does: part file, then the playlist."""

    def __init__(self, root: Path, stream: str, rendition: str = "360p") -> None:
        self.store = RenditionStore(root, stream, rendition)
        self.playlist = MediaPlaylist(
            init_uri="init.mp4", target_duration=TARGET, part_target=PART, part_uri=part_name
        )
        self.store.write_init(b"init")

    def publish_part(self) -> tuple[int, int]:
        msn, index = self.playlist.next_part_position()
        if index == PARTS_PER_SEGMENT:
            self.playlist.close_segment(segment_name(msn))
            self.store.write_segment(msn, b"segment")
            msn, index = self.playlist.next_part_position()
        self.store.write_part(msn, index, f"part {msn}.{index}".encode())
        self.playlist.add_part(
            Part(part_name(msn, index), PART, index == 0), program_date_time=datetime.now(UTC)
        )
        self.store.publish_playlist(self.playlist.render())
        return msn, index


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    parent = tmp_path_factory.mktemp("origin")
    (parent / "secret.txt").write_text("not for viewers")
    root = parent / "store"
    root.mkdir()
    write_multivariant(root, "demo", "#EXTM3U\n")
    return root


@pytest.fixture(scope="module")
def origin(store: Path) -> Iterator[str]:
    with origin_process(store, max_held=MAX_HELD) as base:
        yield base


@pytest.fixture
def publisher(store: Path, request: pytest.FixtureRequest) -> Publisher:
    stream = request.node.name.split("[")[0].replace("test_", "").replace("_", "-")[:60]
    publisher = Publisher(store, stream)
    publisher.stream = stream  # type: ignore[attr-defined]
    for _ in range(5):  # segment 0 complete (4 parts), part 1.0 published
        publisher.publish_part()
    return publisher


def url(origin: str, publisher: Publisher, name: str = "index.m3u8") -> str:
    return f"{origin}/live/{publisher.stream}/360p/{name}"  # type: ignore[attr-defined]


async def test_blocking_reload_answers_as_soon_as_the_part_appears(
    origin: str, publisher: Publisher
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(3):
            msn, index = publisher.playlist.next_part_position()
            if index == PARTS_PER_SEGMENT:
                msn, index = msn + 1, 0
            request = asyncio.create_task(
                client.get(url(origin, publisher), params={"_HLS_msn": msn, "_HLS_part": index})
            )
            await asyncio.sleep(0.4)
            assert not request.done(), "answered before the part existed"
            written_at = time.monotonic()
            assert publisher.publish_part() == (msn, index)
            response = await request
            waited = time.monotonic() - written_at
            assert response.status_code == 200
            assert f'URI="{part_name(msn, index)}"' in response.text
            assert waited < 0.25, f"answered {waited:.3f} s after the part appeared"
            assert response.headers["cache-control"] == f"public, max-age={TARGET}"


async def test_a_part_already_there_is_answered_at_once(origin: str, publisher: Publisher) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        started = time.monotonic()
        response = await client.get(url(origin, publisher), params={"_HLS_msn": 0})
        assert response.status_code == 200 and time.monotonic() - started < 0.5
        # Segment 0 ended after 4 parts: part 7 of it is answered by part 1.0.
        response = await client.get(url(origin, publisher), params={"_HLS_msn": 0, "_HLS_part": 7})
        assert response.status_code == 200


async def test_blocking_reload_times_out_after_three_target_durations(
    origin: str, publisher: Publisher
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        started = time.monotonic()
        response = await client.get(url(origin, publisher), params={"_HLS_msn": 1, "_HLS_part": 1})
        waited = time.monotonic() - started
    assert response.status_code == 503
    assert response.headers["cache-control"] == "no-store"
    assert 3 * TARGET - 0.05 <= waited < 3 * TARGET + 1.0


@pytest.mark.parametrize(
    "params",
    [
        {"_HLS_part": "1"},
        {"_HLS_msn": "x"},
        {"_HLS_msn": "-1"},
        {"_HLS_msn": "1e3"},
        {"_HLS_msn": "9" * 40},
        {"_HLS_msn": "4"},  # the last segment is 1: more than two ahead
        {"_HLS_msn": "1", "_HLS_part": "13"},  # the Advance Part Limit is 3 / 0.25 = 12
        {"_HLS_msn": "3", "_HLS_part": "12"},
    ],
)
async def test_malformed_or_too_far_directives_get_400_at_once(
    origin: str, publisher: Publisher, params: dict[str, str]
) -> None:
    before = (publisher.store.folder / "index.m3u8").read_text()
    async with httpx.AsyncClient(timeout=10) as client:
        started = time.monotonic()
        response = await client.get(url(origin, publisher), params=params)
    assert response.status_code == 400, response.text
    assert time.monotonic() - started < 0.5
    assert response.headers["cache-control"] == "no-store"
    assert (publisher.store.folder / "index.m3u8").read_text() == before


async def test_held_requests_are_capped(origin: str, publisher: Publisher) -> None:
    wanted = {"_HLS_msn": "1", "_HLS_part": "1"}
    async with httpx.AsyncClient(timeout=10) as client:
        held = [asyncio.create_task(client.get(url(origin, publisher), params=wanted))]
        held.append(asyncio.create_task(client.get(url(origin, publisher), params=wanted)))
        await asyncio.sleep(0.3)
        refused = await client.get(url(origin, publisher), params=wanted)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        publisher.publish_part()
        assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
        # Once they are answered, the next blocked request is held again.
        assert (await client.get(url(origin, publisher), params=wanted)).status_code == 200


async def test_the_hinted_part_is_held_until_written(origin: str, publisher: Publisher) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        playlist = (await client.get(url(origin, publisher))).text
        hinted = playlist.rstrip().rsplit('URI="', 1)[1].rstrip('"')
        assert hinted == part_name(1, 1)
        request = asyncio.create_task(client.get(url(origin, publisher, hinted)))
        await asyncio.sleep(0.3)
        assert not request.done()
        written_at = time.monotonic()
        publisher.publish_part()
        response = await request
        assert time.monotonic() - written_at < 0.25
        assert response.status_code == 200 and response.content == b"part 1.1"
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        # A part that is not the hinted one is not waited for: 404 at once.
        for name in (part_name(3, 0), part_name(1, 3), part_name(0, 9)):
            started = time.monotonic()
            far = await client.get(url(origin, publisher, name))
            assert far.status_code == 404 and time.monotonic() - started < 0.5


async def test_cache_headers_and_types(origin: str, publisher: Publisher) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        plain = await client.get(url(origin, publisher))
        assert plain.headers["cache-control"] == "public, max-age=1"
        assert plain.headers["content-type"].startswith("application/vnd.apple.mpegurl")
        for name in ("init.mp4", part_name(0, 0), segment_name(0)):
            response = await client.get(url(origin, publisher, name))
            assert response.status_code == 200
            assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert response.headers["content-type"] == "video/mp4"
        multivariant = await client.get(f"{origin}/live/demo/index.m3u8")
        assert multivariant.status_code == 200
        assert multivariant.headers["cache-control"] == "public, max-age=1"
        missing = await client.get(url(origin, publisher, segment_name(9)))
        assert missing.status_code == 404
        assert missing.headers["cache-control"] == "public, max-age=1"


@pytest.mark.parametrize(
    "path",
    [
        "/live/../secret.txt",
        "/live/%2e%2e/secret.txt",
        "/live/demo/..%2f..%2fsecret.txt",
        "/live/%2e%2e/%2e%2e/index.m3u8",
        "/live/demo/360p/..%2f..%2f..%2fsecret.txt",
        "/live/Demo/index.m3u8",
        "/live/demo/360p/init.mp4.tmp",
        "/live/demo/360p/.index.m3u8.tmp",
        "/live/demo/360p/part1.m4s",
        "/live/demo/360p/seg" + "9" * 30 + ".m4s",
        "/secret.txt",
    ],
)
async def test_names_outside_the_store_layout_are_refused(origin: str, path: str) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(origin + path)
    assert response.status_code == 404
    assert "not for viewers" not in response.text
