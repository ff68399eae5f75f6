"""What a meeting page's media did and when, for the recovery test and benchmark
(tests/integration/test_browser_resilience.py, bench/media_recovery.py): the performance marks
web/media.js sets, and every new picture a remote video presents.
"""

from __future__ import annotations

from playwright.async_api import Page

# Test instrumentation: every new picture each remote video presents (requestVideoFrameCallback
# fires per frame composited, never for a frozen one), as times (the last 2,000), and the
# longest gap between two pictures of one video element.
_WATCH_FRAMES = """
() => {
  const state = { advances: [], maxGapMs: 0 };
  window.testFrames = state;
  const watch = (video) => {
    video.testWatched = true;
    let last = null;
    const frame = () => {
      const now = Date.now();
      if (last !== null) state.maxGapMs = Math.max(state.maxGapMs, now - last);
      last = now;
      state.advances.push(now);
      if (state.advances.length > 2000) state.advances.shift();
      video.requestVideoFrameCallback(frame);
    };
    video.requestVideoFrameCallback(frame);
  };
  setInterval(() => {
    for (const v of document.querySelectorAll('#stage .tile:not(.self) video')) {
      if (!v.testWatched) watch(v);
    }
  }, 50);
}
"""


async def marks(page: Page, name: str) -> list[float]:
    """When the page set the performance mark `name` (web/media.js), in epoch ms."""
    found: list[float] = await page.evaluate(
        "(name) => performance.getEntriesByName(name)"
        ".map(e => performance.timeOrigin + e.startTime)",
        name,
    )
    return found


async def recovery(page: Page, killed_at: float) -> dict[str, float | None]:
    """Milliseconds from the kill to each step of the page's recovery (None: not seen)."""

    async def first(name: str) -> float | None:
        after = [t for t in await marks(page, name) if t > killed_at]
        return round(min(after) - killed_at) if after else None

    repaired = await first("townhall:media-repair-subscribe")
    advances: list[float] = await page.evaluate("window.testFrames.advances")
    start = killed_at + (repaired or 0)
    frame = [t for t in advances if t > start]
    return {
        "stall_noticed_ms": await first("townhall:media-stall"),
        "chromium_noticed_ms": await first("townhall:media-disconnected-subscribe"),
        "told_to_move_ms": await first("townhall:media-moving"),
        "repair_started_ms": repaired,
        "subscribe_offered_ms": await first("townhall:media-offered-subscribe"),
        "subscribe_gathered_ms": await first("townhall:media-gathered-subscribe"),
        "subscribe_answered_ms": await first("townhall:media-answered-subscribe"),
        "subscribe_connected_ms": await first("townhall:media-connected-subscribe"),
        "first_frame_ms": round(min(frame) - killed_at) if frame else None,
    }


async def watch_frames(page: Page) -> None:
    """Start recording pictures into `window.testFrames` (instrumentation, not the app's)."""
    await page.evaluate(_WATCH_FRAMES)
