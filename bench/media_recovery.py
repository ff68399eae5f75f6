"""Media recovery after a media node is killed, with its breakdown, against what Chromium's own
ICE timers give, in one run.

One command, bounded: it starts the twin with enough media nodes that each kill leaves a live
one, a signed-in host page and a guest page in one meeting (Chromium, fake camera), then:

1. `--kills` times: SIGKILL every process of the node hosting the meeting (as a lost
   instance: no drain, no deregistration), and time, on both pages, from the kill to: the
   page's stall watch noticing (web/stall.js), signaling's answer that the room moves, the
   repair starting, the new subscribe connection up, and the first new picture presented
   (requestVideoFrameCallback). Recovery is the first new picture.
2. `--reference-kills` times, in a second meeting whose pages' `media_stalled` messages are
   dropped on the way (so only Chromium itself can notice): the kill to Chromium's own
   "disconnected", and to the first new picture.

    PYTHONPATH=functions:. .venv/bin/python -m bench.media_recovery [--kills 5]

Writes bench/results/media_recovery.json and .png; prints p50 / max of each and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, WebSocketRoute, async_playwright

from bench.join_time import host_page, percentile
from infra.twin.media_nodes import LocalMediaNode
from infra.twin.server import LocalTwin, TwinOptions
from tests.integration.browser import CHROMIUM, MEDIA_ARGS
from tests.integration.media_timeline import recovery, watch_frames

RESULTS = Path(__file__).resolve().parent / "results"
TOTAL_TIMEOUT_S = 900.0
RECOVERY_TIMEOUT_S = 60.0
# After a recovery, before the next kill: both pages' new connections settle.
SETTLE_S = 3.0
SOCKET = re.compile(r"/ws\?")
REMOTE_PICTURE = (
    "() => [...document.querySelectorAll('#stage .tile:not(.self) video')]"
    ".some(v => v.videoWidth > 0 && v.currentTime > 0.3)"
)


async def _guest(
    browser: Browser,
    join_url: str,
    name: str,
    route_socket: Callable[[WebSocketRoute], Any] | None = None,
) -> Page:
    context = await browser.new_context()
    if route_socket is not None:
        await context.route_web_socket(SOCKET, route_socket)
    page = await context.new_page()
    await page.goto(join_url)
    await page.fill("#name", name)
    await page.wait_for_function(
        "() => [...document.querySelectorAll('#prejoin video')].some(v => v.videoWidth > 0)",
        timeout=30_000,
    )
    await page.get_by_role("button", name="Join", exact=True).click()
    await page.wait_for_function(REMOTE_PICTURE, timeout=30_000)
    return page


def _without_stall_reports(route: WebSocketRoute) -> None:
    """Pass the page's socket through, but drop its `media_stalled` messages."""
    server = route.connect_to_server()

    def to_server(message: str | bytes) -> None:
        if isinstance(message, str) and '"action":"media_stalled"' in message.replace(" ", ""):
            return
        server.send(message)

    route.on_message(to_server)
    server.on_message(route.send)


def _hosting(twin: LocalTwin) -> LocalMediaNode:
    busy = [n for n in twin.media_nodes if n.running() and n.health()["sessions"] > 0]
    if len(busy) != 1:
        raise RuntimeError(f"the meeting is on {len(busy)} nodes, not one")
    return busy[0]


async def _recovered(page: Page, killed_at: float) -> dict[str, float | None]:
    """Waits for a new picture after the page's subscribe repair started; its timeline."""
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    while time.monotonic() < deadline:
        steps = await recovery(page, killed_at)
        if steps["first_frame_ms"] is not None and steps["repair_started_ms"] is not None:
            return steps
        await asyncio.sleep(0.1)
    raise TimeoutError(f"no picture {RECOVERY_TIMEOUT_S:.0f} s after the kill")


async def _kills(
    twin: LocalTwin, pages: list[Page], count: int, label: str
) -> list[dict[str, Any]]:
    samples: list[dict[str, Any]] = []
    for index in range(count):
        node = _hosting(twin)
        killed_at = time.time() * 1000
        await asyncio.to_thread(node.kill)
        steps = await asyncio.gather(*(_recovered(page, killed_at) for page in pages))
        for who, step in zip(("host", "guest"), steps, strict=True):
            samples.append({"kind": label, "kill": index + 1, "page": who, **step})
            print(f"{label} kill {index + 1}/{count} {who}: {step}")
        await asyncio.sleep(SETTLE_S)
    return samples


async def _meeting(
    browser: Browser, base_url: str, route_socket: Callable[[WebSocketRoute], Any] | None = None
) -> list[Page]:
    """A host and a guest in a new meeting, both seeing the other, pictures recorded."""
    host, join_url = await host_page(browser, base_url, route_socket=route_socket)
    guest = await _guest(browser, join_url, "Guest", route_socket)
    await host.wait_for_function(REMOTE_PICTURE, timeout=30_000)
    for page in (host, guest):
        await watch_frames(page)
    return [host, guest]


def _summary(samples: list[dict[str, Any]], key: str) -> dict[str, Any]:
    values = [s[key] for s in samples if s.get(key) is not None]
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50_ms": percentile(values, 0.5), "max_ms": max(values)}


async def run(kills: int, reference_kills: int) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    data = Path(tempfile.mkdtemp(prefix="media-recovery-"))
    nodes = kills + reference_kills + 2
    twin = LocalTwin.start(data, options=TwinOptions(media_nodes=nodes))
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=MEDIA_ARGS)
            try:
                pages = await _meeting(browser, twin.base_url)
                with_watch = await asyncio.wait_for(
                    _kills(twin, pages, kills, "stall_watch"), TOTAL_TIMEOUT_S / 2
                )
                for page in pages:
                    await page.context.close()
                # The first meeting's last node would still count its closed sessions for a
                # while: take it away, so the next meeting's node is the only busy one.
                await asyncio.to_thread(_hosting(twin).kill)
                reference_pages = await _meeting(browser, twin.base_url, _without_stall_reports)
                reference = await asyncio.wait_for(
                    _kills(twin, reference_pages, reference_kills, "chromium_only"),
                    TOTAL_TIMEOUT_S / 2,
                )
            finally:
                await browser.close()
    finally:
        twin.stop()
    steps = (
        "stall_noticed_ms",
        "told_to_move_ms",
        "repair_started_ms",
        "subscribe_connected_ms",
        "first_frame_ms",
    )
    summary: dict[str, Any] = {
        "stall_watch": {step: _summary(with_watch, step) for step in steps},
        "chromium_only": {
            step: _summary(reference, step)
            for step in ("chromium_noticed_ms", "repair_started_ms", "first_frame_ms")
        },
    }
    # The breakdown of a recovery: each step's share, as medians of per-sample differences.
    phases = {
        "detection": ("stall_noticed_ms", None),
        "check_and_move": ("told_to_move_ms", "stall_noticed_ms"),
        "negotiation": ("subscribe_connected_ms", "repair_started_ms"),
        "first_frame": ("first_frame_ms", "subscribe_connected_ms"),
    }
    breakdown: dict[str, float] = {}
    for phase, (end, begin) in phases.items():
        spans = [
            s[end] - (s[begin] if begin else 0)
            for s in with_watch
            if s.get(end) is not None and (begin is None or s.get(begin) is not None)
        ]
        if spans:
            breakdown[phase] = percentile(spans, 0.5)
    summary["stall_watch_breakdown_p50_ms"] = breakdown
    ours = summary["stall_watch"]["first_frame_ms"]
    theirs = summary["chromium_only"]["first_frame_ms"]
    if ours.get("n") and theirs.get("n"):
        summary["p50_chromium_only_over_stall_watch"] = round(theirs["p50_ms"] / ours["p50_ms"], 2)
    return {
        "benchmark": "media_recovery",
        "what": "SIGKILL of the node hosting a two-page meeting to the first new picture",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count() or 0,
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },
        "summary": summary,
        "samples": [*with_watch, *reference],
    }


PHASES = (
    ("noticed", "stall_noticed_ms"),
    ("checked, told to move", "repair_started_ms"),
    ("offer from the new node", "subscribe_offered_ms"),
    ("answer relayed", "subscribe_answered_ms"),
    ("connected", "subscribe_connected_ms"),
    ("first picture", "first_frame_ms"),
)


def plot(result: dict[str, Any], out: Path) -> None:
    """Each recovery as stacked phases (ms from the kill), then Chromium alone's for scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ours = [s for s in result["samples"] if s["kind"] == "stall_watch"]
    theirs = [s for s in result["samples"] if s["kind"] == "chromium_only"]
    figure, axis = plt.subplots(figsize=(9, 4.5))
    labels: list[str] = []
    named: set[str] = set()  # each phase in the legend once
    for row, sample in enumerate(ours):
        start = 0.0
        for index, (name, key) in enumerate(PHASES):
            end = sample.get(key)
            if end is None or end < start:
                continue
            label = None if name in named else name
            named.add(name)
            axis.barh(row, end - start, left=start, color=f"C{index}", label=label)
            start = end
        labels.append(f"kill {sample['kill']} {sample['page']}")
    for offset, sample in enumerate(theirs):
        row = len(ours) + offset
        noticed = sample.get("chromium_noticed_ms") or 0
        axis.barh(row, noticed, color="0.75", label="Chromium noticing" if offset == 0 else None)
        axis.barh(
            row,
            sample["first_frame_ms"] - noticed,
            left=noticed,
            color="0.45",
            label="Chromium's repair" if offset == 0 else None,
        )
        labels.append(f"Chromium alone {sample['kill']} {sample['page']}")
    axis.axvline(3000, color="red", linestyle="--", linewidth=1, label="3 s aim")
    axis.set_yticks(range(len(labels)), labels, fontsize=7)
    axis.invert_yaxis()
    axis.set_xlabel("ms from the SIGKILL")
    axis.set_title("Media back after a lost node (bench/media_recovery.py)")
    axis.legend(fontsize=7, loc="upper right")
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=5, help="kills with the stall watch (1-10)")
    parser.add_argument(
        "--reference-kills", type=int, default=2, help="kills with Chromium alone (1-5)"
    )
    args = parser.parse_args()
    if not 1 <= args.kills <= 10 or not 1 <= args.reference_kills <= 5:
        parser.error("--kills must be 1 to 10 and --reference-kills 1 to 5")
    result = asyncio.run(run(args.kills, args.reference_kills))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "media_recovery.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, RESULTS / "media_recovery.png")
    s = result["summary"]
    ours = s["stall_watch"]["first_frame_ms"]
    theirs = s["chromium_only"]["first_frame_ms"]
    print(
        f"recovery with the stall watch: p50 {ours.get('p50_ms')} ms, max {ours.get('max_ms')} ms; "
        f"Chromium alone: p50 {theirs.get('p50_ms')} ms, max {theirs.get('max_ms')} ms "
        f"(noticed at p50 {s['chromium_only']['chromium_noticed_ms'].get('p50_ms')} ms); "
        f"ratio {s.get('p50_chromium_only_over_stall_watch')}; "
        f"breakdown {s['stall_watch_breakdown_p50_ms']}; "
        f"load average {result['machine']['load_average_1min']}"
    )
    print(f"wrote {out}")
    if not math.isfinite(ours.get("p50_ms", math.inf)):
        raise SystemExit("no recovery measured")


if __name__ == "__main__":
    main()
