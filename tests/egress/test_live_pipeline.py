"""The whole phase-1 pipeline with real processes: the worker encodes 4 s of a synthetic
program in real time, the origin serves it, and a client follows the live edge the way an
LL-HLS player does (one blocking reload per part, then the part). Every part arrives in order,
each soon after it was published, and what the client fetched decodes as 4 s of video."""

from __future__ import annotations

import asyncio
import re
import signal
import statistics
import time
from pathlib import Path

import av
import httpx
import pytest

from egress.hls.live_edge import parse_live_edge
from tests.egress.processes import origin_process, start_worker, wait_for_file

DURATION = 4.0
FRAME_RATE = 30


async def test_a_client_follows_the_live_edge_part_by_part(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    with origin_process(root) as base:
        worker = start_worker(root, "live", "--rungs", "360p,180p", "--duration", str(DURATION))
        try:
            fetched, delays = await follow(f"{base}/live/live", "180p", tmp_path)
            assert worker.wait(timeout=20) == 0, "the worker ends with its program"
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    whole = tmp_path / "followed.mp4"
    whole.write_bytes(fetched)
    with av.open(str(whole)) as container:
        frames = sum(1 for packet in container.demux(video=0) if packet.pts is not None)
        assert container.streams.audio, "the audio track is there"
    assert frames == DURATION * FRAME_RATE
    print(
        f"\npart published → blocking reload answered: p50 {statistics.median(delays) * 1e3:.0f}"
        f" ms, max {max(delays) * 1e3:.0f} ms over {len(delays)} parts"
    )
    assert max(delays) < 0.5


async def follow(stream_url: str, rendition: str, folder: Path) -> tuple[bytes, list[float]]:
    """Follow one rendition to its end; returns init + every part's bytes, and the delays."""
    media = f"{stream_url}/{rendition}"
    store = folder / "store" / "live" / rendition
    delays: list[float] = []
    async with httpx.AsyncClient(timeout=10) as client:
        deadline = time.monotonic() + 30
        while (await client.get(f"{stream_url}/index.m3u8")).status_code != 200:
            assert time.monotonic() < deadline, "no multivariant playlist within 30 s"
            await asyncio.sleep(0.05)
        multivariant = (await client.get(f"{stream_url}/index.m3u8")).text
        assert f"{rendition}/index.m3u8" in multivariant
        playlist = await client.get(f"{media}/index.m3u8")
        assert playlist.status_code == 200
        data = bytearray((await client.get(f"{media}/init.mp4")).content)
        wanted = (0, 0)
        # Bounded: one pass per part of a 4 s program (12 a segment at most), plus the end.
        for _ in range(int(DURATION * 3) + 20):
            assert time.monotonic() < deadline, "the live edge stalled"
            response = await client.get(
                f"{media}/index.m3u8", params={"_HLS_msn": wanted[0], "_HLS_part": wanted[1]}
            )
            answered = time.time()
            assert response.status_code == 200, response.text
            edge = parse_live_edge(response.text)
            parts = re.findall(r'#EXT-X-PART:[^\n]*URI="part(\d+)\.(\d+)\.m4s"', response.text)
            listed = [(int(m), int(p)) for m, p in parts]
            new = [p for p in listed if p >= wanted]
            if not new:
                assert edge.ended
                break
            for msn, index in new:
                part = await client.get(f"{media}/part{msn}.{index}.m4s")
                assert part.status_code == 200
                data += part.content
            newest = new[-1]
            published = (store / "index.m3u8").stat().st_mtime
            if edge.last_part == newest and not edge.ended:
                delays.append(max(0.0, answered - published))
            wanted = (newest[0], newest[1] + 1)
            if edge.ended:
                break
        else:
            pytest.fail("the playlist never ended")
    return bytes(data), delays


def test_sigterm_ends_the_broadcast_cleanly(tmp_path: Path) -> None:
    worker = start_worker(tmp_path, "live", "--rungs", "180p", "--duration", "60")
    playlist = tmp_path / "live" / "180p" / "index.m3u8"
    try:
        wait_for_file(playlist, worker)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=10) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert playlist.read_text().rstrip().endswith("#EXT-X-ENDLIST")
    assert not list(playlist.parent.glob(".*")), "no temporary file is left behind"
