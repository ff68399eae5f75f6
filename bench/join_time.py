"""Join time in the web app: from the click on "Join" to the first remote video frame on screen.

One command, bounded: it starts the twin with one media node on loopback, opens a host page
(signed in, fake camera) that joins and publishes, then `--runs` times: a fresh browser
profile opens the invite link, waits for the pre-join check's camera preview, fills the name,
and the clock starts at the click on "Join" (in the page, `performance.now()` in a capturing
click listener) and stops at the first frame of a remote video presented by the compositor
(`requestVideoFrameCallback`'s `now`). Then the page leaves and its profile is closed.

The page's own performance marks (web/join.js, web/media.js) split each join into: HTTP join
grant, WebSocket + `join` reply, publish and subscribe negotiated, first frame.

    PYTHONPATH=functions:. .venv/bin/python -m bench.join_time [--runs 10]

Writes bench/results/join_time.json; prints p50 / p90 / max against the 700 ms target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Page, WebSocketRoute, async_playwright

from infra.twin.server import LocalTwin, TwinOptions
from tests.integration.browser import CHROMIUM, MEDIA_ARGS

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_MS = 700.0
RUN_TIMEOUT_S = 30.0
TOTAL_TIMEOUT_S = 600.0
MARKS = ("join-grant", "join-reply", "media-published", "media-subscribed")

# Installed before the click: resolves with the click time and the first presented remote
# frame (a slot video, wherever it is in the page), on the page's own clock.
WATCH_FIRST_FRAME = """
() => {
  window.joinTiming = new Promise((resolve) => {
    const timing = { click: null };
    document.getElementById("join-button").addEventListener("click", () => {
      timing.click = performance.now();
    }, { capture: true, once: true });
    const watched = new WeakSet();
    const watch = () => {
      for (const video of document.querySelectorAll("video.remote")) {
        if (watched.has(video)) continue;
        watched.add(video);
        video.requestVideoFrameCallback((now, meta) => {
          resolve({ ...timing, frame: now, width: meta.width, height: meta.height });
        });
      }
    };
    new MutationObserver(watch).observe(document.body, { childList: true, subtree: true });
  });
}
"""

READ_MARKS = """
() => Object.fromEntries(performance.getEntriesByType("mark")
  .filter((m) => m.name.startsWith("townhall:"))
  .map((m) => [m.name.slice("townhall:".length), m.startTime]))
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = max(0, math.ceil(q * len(ordered)) - 1)
    return ordered[index]


async def host_page(
    browser: Browser,
    base_url: str,
    *,
    route_socket: Callable[[WebSocketRoute], Any] | None = None,
) -> tuple[Page, str]:
    """A signed-in host in the meeting, publishing its fake camera; returns the join URL.
    `route_socket` sees the page's signaling socket (Playwright's WebSocket routing)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as http:
        signup = await http.post(
            "/api/auth/signup",
            json={
                "email": f"bench-{uuid.uuid4().hex[:8]}@example.com",
                "password": "correct horse 1",
                "name": "Host",
            },
        )
        signup.raise_for_status()
        session = signup.json()
        created = await http.post(
            "/api/meetings",
            json={
                "title": "Join time",
                "start": "2026-12-01T09:00",
                "timezone": "UTC",
                "duration_minutes": 60,
            },
            headers={"authorization": f"Bearer {session['access_token']}"},
        )
        created.raise_for_status()
        join_url: str = created.json()["join_url"]
    context = await browser.new_context()
    await context.add_init_script(
        "if (!localStorage.getItem('townhall.refresh')) "
        f"localStorage.setItem('townhall.refresh', {session['refresh_token']!r});"
    )
    if route_socket is not None:
        await context.route_web_socket(re.compile(r"/ws\?"), route_socket)
    page = await context.new_page()
    await page.goto(join_url)
    # The signed-in host is not asked for a name, and starts the meeting.
    await page.locator("#join-button").click()
    await page.wait_for_selector("#stage .tile.self video", timeout=30_000)
    await page.wait_for_function(
        "() => document.querySelector('#stage .tile.self video').videoWidth > 0", timeout=30_000
    )
    await page.wait_for_timeout(1000)  # the node has the host's keyframes flowing
    return page, join_url


# Every peer connection a page makes, in window.testPeers (instrumentation, not the app's).
RECORD_PEERS = (
    "window.testPeers = []; const NativePeer = window.RTCPeerConnection;"
    "window.RTCPeerConnection = class extends NativePeer {"
    " constructor(...args) { super(...args); window.testPeers.push(this); } };"
)
# The local candidate of each connected peer connection's selected pair (needs RECORD_PEERS).
SELECTED_CANDIDATES = """
async () => {
  const found = [];
  for (const pc of window.testPeers || []) {
    if (pc.connectionState !== 'connected') continue;
    const stats = await pc.getStats();
    for (const s of stats.values()) {
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const local = stats.get(stats.get(s.selectedCandidatePairId).localCandidateId);
        found.push(local.candidateType === 'relay'
          ? {type: 'relay', relay: local.relayProtocol} : {type: local.candidateType});
      }
    }
  }
  return found;
}
"""


async def one_join(
    browser: Browser, join_url: str, index: int, *, init_script: str | None = None
) -> dict[str, Any]:
    context = await browser.new_context()
    if init_script is not None:
        await context.add_init_script(init_script)
    try:
        page = await context.new_page()
        await page.goto(join_url)
        await page.fill("#name", f"Guest {index}")
        # The pre-join check is done when its preview shows the camera: the click comes after.
        await page.wait_for_function(
            "() => [...document.querySelectorAll('#prejoin video')].some(v => v.videoWidth > 0)",
            timeout=RUN_TIMEOUT_S * 1000,
        )
        await page.evaluate(WATCH_FIRST_FRAME)
        await page.get_by_role("button", name="Join", exact=True).click()
        timing = await asyncio.wait_for(
            page.evaluate("() => window.joinTiming"), timeout=RUN_TIMEOUT_S
        )
        marks = await page.evaluate(READ_MARKS)
        click = timing["click"]
        result = {
            "join_ms": round(timing["frame"] - click, 1),
            "frame": [timing["width"], timing["height"]],
            "marks_ms": {name: round(marks[name] - click, 1) for name in MARKS if name in marks},
        }
        if init_script is not None:
            result["candidates"] = await page.evaluate(SELECTED_CANDIDATES)
        await page.get_by_role("button", name="Leave").click()
        await page.wait_for_selector("#ended:not([hidden])", timeout=10_000)
        return result
    finally:
        await context.close()


async def run(runs: int) -> dict[str, Any]:
    load_before = os.getloadavg()[0]  # the machine is shared: say how busy it was
    data = Path(tempfile.mkdtemp(prefix="join-time-"))
    twin = LocalTwin.start(data, options=TwinOptions(media_nodes=1))
    samples: list[dict[str, Any]] = []
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=MEDIA_ARGS)
            try:
                _host, join_url = await host_page(browser, twin.base_url)
                deadline = time.monotonic() + TOTAL_TIMEOUT_S
                for index in range(runs):
                    if time.monotonic() > deadline:
                        print("stopping early: the total time limit passed", file=sys.stderr)
                        break
                    sample = await one_join(browser, join_url, index)
                    samples.append(sample)
                    print(
                        f"join {index + 1}/{runs}: {sample['join_ms']:.0f} ms "
                        f"(marks {sample['marks_ms']})"
                    )
                    await asyncio.sleep(0.5)  # the node frees the guest's connections
            finally:
                await browser.close()
    finally:
        twin.stop()
    times = [s["join_ms"] for s in samples]
    if not times:
        raise SystemExit("no join completed")
    summary = {
        "runs": len(times),
        "p50_ms": percentile(times, 0.5),
        "p90_ms": percentile(times, 0.9),
        "max_ms": max(times),
        "target_ms": TARGET_MS,
        "p50_over_target": round(percentile(times, 0.5) / TARGET_MS, 2),
    }
    return {
        "benchmark": "join_time",
        "what": "click on Join to the first remote video frame presented, fresh profile each run",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count() or 0,
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },
        "summary": summary,
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="joins to time (1-50)")
    args = parser.parse_args()
    if not 1 <= args.runs <= 50:
        parser.error("--runs must be 1 to 50")
    result = asyncio.run(run(args.runs))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "join_time.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    s = result["summary"]
    print(
        f"join time over {s['runs']} joins: p50 {s['p50_ms']:.0f} ms, p90 {s['p90_ms']:.0f} ms, "
        f"max {s['max_ms']:.0f} ms; target {TARGET_MS:.0f} ms "
        f"(p50 is {s['p50_over_target']:.2f}x the target); "
        f"load average {result['machine']['load_average_1min']}"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
