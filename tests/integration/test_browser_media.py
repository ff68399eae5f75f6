"""Two Chromium pages (fake camera and microphone) join through the web app and see each
other's video through the SFU node, with frames advancing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from playwright.async_api import Page, async_playwright, expect

from infra.twin.server import TwinOptions
from tests.integration.browser import ARTIFACTS, MEDIA_ARGS
from tests.integration.client import Api
from tests.integration.conftest import Twin, _start


@pytest.fixture(scope="module")
def media_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    yield from _start(tmp_path_factory, TwinOptions(media_nodes=1))


REMOTE_VIDEO_PLAYING = """
() => {
  const videos = [...document.querySelectorAll('#stage video')].filter(v => !v.hidden);
  return videos.map(v => ({w: v.videoWidth, t: v.currentTime, p: v.dataset.participant}));
}
"""


async def _join(page: Page, url: str, name: str) -> None:
    await page.goto(url)
    await page.fill("#name", name)
    await page.get_by_role("button", name="Join").click()
    await expect(page.locator("#room")).to_be_visible(timeout=10_000)


async def _sees_remote_video(page: Page) -> list[dict[str, float]]:
    # A visible slot whose picture has a size and whose clock moves on.
    await page.wait_for_function(
        "() => [...document.querySelectorAll('#stage video')]"
        ".some(v => !v.hidden && v.videoWidth > 0 && v.currentTime > 0.5)",
        timeout=30_000,
    )
    first = await page.evaluate(REMOTE_VIDEO_PLAYING)
    await page.wait_for_timeout(1000)
    later = await page.evaluate(REMOTE_VIDEO_PLAYING)
    return [a | {"t2": b["t"]} for a, b in zip(first, later, strict=False)]


async def test_two_pages_see_each_other_through_the_sfu(
    media_twin: Twin,
    chromium: str,
) -> None:
    host = Api(media_twin.base_url)
    await host.sign_up(f"cam-{uuid.uuid4().hex[:6]}@example.com")
    meeting = await host.create_meeting(title="Browser standup")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=MEDIA_ARGS)
        try:
            ada = await (await browser.new_context()).new_page()
            bob = await (await browser.new_context()).new_page()
            await _join(ada, meeting["join_url"], "Ada")
            await _join(bob, meeting["join_url"], "Bob")
            for page in (ada, bob):
                videos = await _sees_remote_video(page)
                playing = [v for v in videos if v["w"] > 0 and v["t2"] > v["t"]]
                assert len(playing) == 1, videos  # the other one, not itself
            await ada.screenshot(path=str(ARTIFACTS / "sfu-room.png"), full_page=True)
        finally:
            await browser.close()
    await host.close()
