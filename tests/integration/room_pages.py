"""People in the meeting room, as the browser tests drive them: a browser profile per person
under the production CSP, joining through the join page, and what their stage shows.

Shared by the room tests (`test_browser_room.py`) and the media recovery test
(`test_browser_resilience.py`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from playwright.async_api import TimeoutError as PlaywrightTimeout

from tests.integration.browser import MEDIA_ARGS

# The policy CloudFront sends (infra/stacks/edge.py, checked by tests/infra/test_edge.py),
# without the inline-script hashes: join.html has no inline script. Served here too, so a
# page that needs an inline style or script fails in these tests, not only in AWS.
CSP = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def room_args() -> list[str]:
    """MEDIA_ARGS, plus: pages whose response the test fulfils (to add the CSP) count as
    public to Chromium's local-network checks, which would then refuse the loopback socket."""
    disabled = [a.split("=", 1)[1] for a in MEDIA_ARGS if a.startswith("--disable-features=")]
    others = [a for a in MEDIA_ARGS if not a.startswith("--disable-features=")]
    return [*others, f"--disable-features={','.join([*disabled, 'LocalNetworkAccessChecks'])}"]


# Visible remote videos on the stage: size and clock, with whose tile they are in.
REMOTE_VIDEOS = """
() => [...document.querySelectorAll('#stage .tile:not(.self) video')].map(v => ({
  participant: v.closest('.tile').dataset.participant,
  screen: v.closest('.tile').dataset.screen === 'true',
  w: v.videoWidth, t: v.currentTime,
}))
"""

# What the stage shows, for failure messages: each tile's camera flag and video, the slot
# videos parked for lack of a tile, and the banner.
STAGE = """
() => ({
  tiles: [...document.querySelectorAll('#stage .tile')].map(t => ({
    participant: t.dataset.participant, self: t.classList.contains('self'),
    cameraOff: t.classList.contains('camera-off'),
    video: t.querySelector('video') ? (t.querySelector('video').dataset.mid || 'self') : null,
  })),
  parked: [...document.querySelectorAll('video.remote')].filter(v => !v.closest('#stage'))
    .map(v => ({mid: v.dataset.mid, w: v.videoWidth, t: v.currentTime})),
  banner: document.querySelector('#banner').hidden ? null : document.querySelector('#banner').textContent,
  events: window.testEvents || null,
  console: window.testConsole || null,
})
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def room_browser(chromium: str) -> AsyncIterator[Browser]:
    """One Chromium per test module, launched with `room_args()`."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, args=room_args())
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Person:
    name: str
    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)  # warnings and errors, for failure messages

    async def participant_id(self) -> str:
        found: str = (
            await self.page.locator("#stage .tile.self").get_attribute("data-participant") or ""
        )
        assert found, f"{self.name} has no self tile"
        return found


async def _with_csp(context: BrowserContext) -> None:
    async def add_policy(route: Any) -> None:
        response = await route.fetch()
        headers = {**response.headers, "content-security-policy": CSP}
        await route.fulfill(response=response, headers=headers)

    await context.route("**/*.html*", add_policy)


async def new_person(
    browser: Browser, name: str, *, refresh_token: str | None = None, csp: bool = True
) -> Person:
    """A browser profile of its own. With `csp`, pages get the production CSP and any
    violation fails the test; without it, axe-core can be injected (it needs an inline
    script, which the CSP rightly refuses)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    if csp:
        await _with_csp(context)
    if refresh_token:
        # Signed in as web/api.js keeps it (only when absent: the token rotates on use).
        await context.add_init_script(
            f"if (!localStorage.getItem('townhall.refresh')) "
            f"localStorage.setItem('townhall.refresh', {refresh_token!r});"
        )
    # Test instrumentation, not part of the app: remember every WebSocket the page opens, so
    # a test can drop one the way a network change would.
    await context.add_init_script(
        "window.testSockets = []; const NativeWebSocket = window.WebSocket;"
        "window.WebSocket = class extends NativeWebSocket {"
        " constructor(...args) { super(...args); window.testSockets.push(this);"
        "  this.addEventListener('message', (m) => window.testEventSeen(m.data)); } };"
    )
    # For failure messages and checks: the last 200 signaling events (participant states in
    # short), and the page's console errors and warnings.
    await context.add_init_script(
        "window.testEvents = []; window.testConsole = [];"
        "window.testEventSeen = (raw) => { try { const e = JSON.parse(raw);"
        " if (e.type !== 'event') return; const p = (e.data || {}).participant || {};"
        " window.testEvents.push([e.seq, e.event, p.participant_id, p.rev, p.camera, p.muted]);"
        " if (window.testEvents.length > 200) window.testEvents.shift(); } catch {} };"
        "for (const level of ['error', 'warn']) { const original = console[level];"
        " console[level] = (...args) => { window.testConsole.push("
        "  `${level}: ${args.map(String).join(' ').slice(0, 300)}`);"
        "  return original.apply(console, args); }; }"
    )
    # And every text the status banner shows, since "reconnected" hides itself after 4 s.
    await context.add_init_script(
        "window.bannerLog = [];"
        "document.addEventListener('DOMContentLoaded', () => {"
        " const banner = document.getElementById('banner'); if (!banner) return;"
        " new MutationObserver(() => { if (!banner.hidden) window.bannerLog.push(banner.textContent); })"
        "  .observe(banner, {childList: true, characterData: true, subtree: true,"
        "   attributes: true, attributeFilter: ['hidden']}); });"
    )
    page = await context.new_page()
    person = Person(name, context, page)

    def on_console(message: Any) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            person.errors.append(message.text)
        if message.type in ("error", "warning"):
            person.console.append(message.text[:300])

    page.on("console", on_console)
    page.on("pageerror", lambda error: person.errors.append(f"page error: {error}"))
    return person


async def join(person: Person, url: str, *, admitted: bool = True) -> None:
    """Through the join page: a guest types their name; the meeting's signed-in host is not
    asked for it and presses "Start" (or "Join" once a session runs)."""
    page = person.page
    await page.goto(url)
    await expect(page.locator("#title")).not_to_have_text("Join a meeting")
    if await page.locator("#name").is_visible():
        await page.fill("#name", person.name)
    await page.locator("#join-button").click()
    if admitted:
        await expect(page.locator("#room")).to_be_visible(timeout=15_000)
        await expect(page.locator("#stage .tile.self")).to_have_count(1)


async def open_panel(page: Page, tab: str) -> None:
    """Show a tab of the drawer (the toolbar buttons toggle, so click only when needed)."""
    if await page.locator(f"#{tab}-panel").is_visible():
        return
    if await page.locator("#drawer").is_visible():
        await page.locator(f"#tab-{tab}").click()
    else:
        button = {"people": "#people-button", "chat": "#chat-button"}.get(tab, "#apps-button")
        await page.locator(button).click()
        if not await page.locator(f"#{tab}-panel").is_visible():
            await page.locator(f"#tab-{tab}").click()
    await expect(page.locator(f"#{tab}-panel")).to_be_visible()


async def close_panels(page: Page) -> None:
    if await page.locator("#drawer").is_visible():
        await page.get_by_role("button", name="Close panels").click()
    await expect(page.locator("#drawer")).to_be_hidden()


# Whether each video matched by `selector` presents new pictures: two frames within 3 s
# (requestVideoFrameCallback fires per frame composited; a frozen picture never fires it, while
# a MediaStream video's currentTime may run on without frames).
PRESENTS_FRAMES = """
(selector) => Promise.all([...document.querySelectorAll(selector)].map((v) =>
  new Promise((resolve) => {
    let frames = 0;
    const timer = setTimeout(() => resolve(false), 3000);
    const frame = () => {
      frames += 1;
      if (frames >= 2) { clearTimeout(timer); resolve(true); } else v.requestVideoFrameCallback(frame);
    };
    v.requestVideoFrameCallback(frame);
  })))
"""


async def presents_frames(page: Page, selector: str) -> list[bool]:
    """For each video `selector` matches, whether it presents new pictures (PRESENTS_FRAMES)."""
    found: list[bool] = await page.evaluate(PRESENTS_FRAMES, selector)
    return found


async def sees_remote_video(page: Page, count: int, *, screen: bool = False) -> list[Any]:
    """`count` remote videos on the stage with a picture, presenting new frames."""
    condition = f"""() => {{
      const vs = ({REMOTE_VIDEOS})().filter(v => v.screen === {str(screen).lower()});
      return vs.length === {count} && vs.every(v => v.w > 0 && v.t > 0.3);
    }}"""
    try:
        await page.wait_for_function(condition, timeout=45_000)
    except PlaywrightTimeout:
        raise AssertionError(
            f"remote videos: {await page.evaluate(REMOTE_VIDEOS)}; stage: {await page.evaluate(STAGE)}"
        ) from None
    videos = [v for v in await page.evaluate(REMOTE_VIDEOS) if v["screen"] == screen]
    kind = '[data-screen="true"]' if screen else ':not([data-screen="true"])'
    advancing = await presents_frames(page, f"#stage .tile:not(.self){kind} video")
    assert len(advancing) == count and all(advancing), (videos, advancing)
    return videos
