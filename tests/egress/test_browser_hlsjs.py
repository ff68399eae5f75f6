"""hls.js (npm, pinned in package-lock.json) in Debian's headless Chromium plays the origin's
stream while the worker encodes it live: both renditions listed, the video's currentTime
advances, and hls.js's own estimate of the latency to the live edge is reported."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import Route, async_playwright

from tests.egress.processes import ROOT, origin_process, start_worker, wait_for_file
from tests.integration.browser import CHROMIUM_ARGS, chromium  # noqa: F401 (a fixture)

HLS_JS = ROOT / "node_modules" / "hls.js" / "dist" / "hls.min.js"
DURATION = 12.0

PLAYER = """<!doctype html>
<html lang="en"><head><title>broadcast</title><script src="/hls.min.js"></script></head>
<body><video id="video" muted playsinline></video>
<script>
  const video = document.getElementById("video");
  const hls = new Hls({ lowLatencyMode: true });
  window.hlsErrors = [];
  window.hlsStalls = [];
  hls.on(Hls.Events.ERROR, (_, data) => {
    (data.fatal ? window.hlsErrors : window.hlsStalls).push(data.details);
  });
  hls.loadSource("/live/live/index.m3u8");
  hls.attachMedia(video);
  hls.on(Hls.Events.MANIFEST_PARSED, () => video.play());
  window.hls = hls;
</script></body></html>
"""


async def test_hlsjs_plays_the_live_stream(tmp_path: Path, chromium: str) -> None:  # noqa: F811
    if not HLS_JS.exists():
        pytest.fail(f"hls.js is missing at {HLS_JS}: run `npm ci`")
    with origin_process(tmp_path) as base:
        worker = start_worker(tmp_path, "live", "--rungs", "360p,180p", "--duration", str(DURATION))
        try:
            await asyncio.to_thread(wait_for_file, tmp_path / "live" / "index.m3u8", worker)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=chromium, args=CHROMIUM_ARGS
                )
                page = await browser.new_page()

                async def serve_player(route: Route) -> None:
                    await route.fulfill(body=PLAYER, content_type="text/html")

                async def serve_hls_js(route: Route) -> None:
                    await route.fulfill(path=HLS_JS, content_type="text/javascript")

                # Same origin as the stream, as behind CloudFront: no CORS needed.
                await page.route(f"{base}/player.html", serve_player)
                await page.route(f"{base}/hls.min.js", serve_hls_js)
                await page.goto(f"{base}/player.html")
                await page.wait_for_function(
                    "document.getElementById('video').currentTime > 1.0", timeout=15_000
                )
                first = await page.evaluate("document.getElementById('video').currentTime")
                await asyncio.sleep(3.0)
                state = await page.evaluate(
                    """() => ({
                        time: document.getElementById('video').currentTime,
                        levels: window.hls.levels.map(l => l.height),
                        latency: window.hls.latency,
                        target: window.hls.targetLatency,
                        errors: window.hlsErrors,
                        stalls: window.hlsStalls,
                        rate: document.getElementById('video').playbackRate,
                    })"""
                )
                await browser.close()
        finally:
            if worker.poll() is None:
                worker.terminate()  # the worker ends the playlist and exits
            worker.wait(timeout=20)
    assert state["errors"] == []
    assert sorted(state["levels"]) == [180, 360]
    # Over 3 s of wall time; the slack is for a stall while other tests load the two cores.
    assert state["time"] - first > 1.5, "the video plays on"
    print(
        f"\nhls.js: latency to the live edge {state['latency']:.2f} s (target"
        f" {state['target']:.2f} s), played {state['time'] - first:.2f} s in 3 s,"
        f" stalls {state['stalls']}"
    )
    assert 0 < state["latency"] < 4.0
