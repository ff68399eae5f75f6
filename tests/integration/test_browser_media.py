"""Two Chromium pages (fake camera and microphone) through the web app and an SFU node of the
twin: one joins with microphone and camera off from the pre-join check, the other sees an
avatar and a muted tile, then the camera comes on without renegotiating and its frames reach
the other page (and it goes off again)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from playwright.async_api import Page, async_playwright, expect

from infra.twin.server import TwinOptions
from tests.integration.browser import MEDIA_ARGS
from tests.integration.client import Api
from tests.integration.conftest import Twin, _start

CAMERA_OFF = re.compile(r"\bcamera-off\b")


@pytest.fixture(scope="module")
def media_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    yield from _start(tmp_path_factory, TwinOptions(media_nodes=1))


def _tile(page: Page, participant_id: str) -> str:
    return f'#stage .tile[data-participant="{participant_id}"]'


async def _playing(page: Page, selector: str) -> None:
    """The tile's video has a picture and its clock moves on."""
    video = f"document.querySelector('{selector} video')"
    await page.wait_for_function(
        f"() => {{ const v = {video}; return v && v.videoWidth > 0 && v.currentTime > 0.3; }}",
        timeout=45_000,
    )
    before = await page.evaluate(f"() => {video}.currentTime")
    await page.wait_for_timeout(1000)
    assert await page.evaluate(f"() => {video}.currentTime") > before


async def _join(page: Page, url: str, name: str, *, devices_off: bool = False) -> str:
    await page.goto(url)
    await page.fill("#name", name)
    if devices_off:
        prejoin = page.locator("#prejoin")
        for device in ("Microphone", "Camera"):
            toggle = prejoin.get_by_role("button", name=device, exact=True)
            await expect(toggle).to_have_attribute("aria-pressed", "true", timeout=10_000)
            await toggle.click()
            await expect(toggle).to_have_attribute("aria-pressed", "false")
    await page.get_by_role("button", name="Join", exact=True).click()
    await expect(page.locator("#room")).to_be_visible(timeout=15_000)
    participant_id = await page.locator("#stage .tile.self").get_attribute("data-participant")
    assert participant_id
    return participant_id


async def test_camera_off_at_join_then_on_reaches_the_other_page(
    media_twin: Twin, chromium: str
) -> None:
    host = Api(media_twin.base_url)
    await host.sign_up(f"cam-{uuid.uuid4().hex[:6]}@example.com")
    meeting = await host.create_meeting(title="Browser standup", allow_before_host=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=MEDIA_ARGS)
        expect.set_options(timeout=15_000)  # two pages of video on two shared cores
        try:
            ada = await (await browser.new_context()).new_page()
            bob = await (await browser.new_context()).new_page()
            ada_id = await _join(ada, meeting["join_url"], "Ada")
            bob_id = await _join(bob, meeting["join_url"], "Bob", devices_off=True)
            await expect(bob.locator("#mic-button")).to_have_attribute("aria-pressed", "true")
            await expect(bob.locator("#camera-button")).to_have_attribute("aria-pressed", "true")

            # Bob sees Ada; Ada sees Bob's avatar, muted.
            await _playing(bob, _tile(bob, ada_id))
            bob_tile = ada.locator(_tile(ada, bob_id))
            await expect(bob_tile).to_have_class(CAMERA_OFF)
            await expect(bob_tile.locator(".avatar")).to_have_text("BO")
            await expect(bob_tile.locator(".tile-mic")).to_be_visible()

            # Camera on (V): a new capture swapped into the same publish connection.
            await bob.locator("#stage").click()
            await bob.keyboard.press("v")
            await expect(bob.locator("#camera-button")).to_have_attribute("aria-pressed", "false")
            await expect(bob_tile).not_to_have_class(CAMERA_OFF, timeout=10_000)
            await _playing(ada, _tile(ada, bob_id))

            # And off again: the avatar is back on Ada's page.
            await bob.get_by_role("button", name="Stop video").click()
            await expect(bob.locator("#camera-button")).to_have_attribute("aria-pressed", "true")
            await expect(bob_tile).to_have_class(CAMERA_OFF, timeout=10_000)
        finally:
            expect.set_options(timeout=5_000)
            await browser.close()
    await host.close()


# A camera that takes 2.5 s to start (as a slow USB camera or a busy machine does), with a
# flag for when it has.
SLOW_DEVICES = """
window.devicesStarted = false;
const realGetUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = async (constraints) => {
  const stream = await realGetUserMedia(constraints);
  await new Promise((resolve) => setTimeout(resolve, 2500));
  window.devicesStarted = true;
  return stream;
};
"""


async def test_join_clicked_while_the_devices_start_joins_with_them_on(
    media_twin: Twin, chromium: str
) -> None:
    host = Api(media_twin.base_url)
    await host.sign_up(f"slow-{uuid.uuid4().hex[:6]}@example.com")
    meeting = await host.create_meeting(title="Quick click", allow_before_host=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=MEDIA_ARGS)
        expect.set_options(timeout=15_000)
        try:
            ada = await (await browser.new_context()).new_page()
            ada_id = await _join(ada, meeting["join_url"], "Ada")
            context = await browser.new_context()
            await context.add_init_script(SLOW_DEVICES)
            cy = await context.new_page()
            await cy.goto(meeting["join_url"])
            await cy.fill("#name", "Cy")
            assert not await cy.evaluate("window.devicesStarted")  # the click comes first
            await cy.get_by_role("button", name="Join", exact=True).click()
            await expect(cy.locator("#room")).to_be_visible()
            # Joined with what the check was starting: microphone and camera on.
            await expect(cy.locator("#mic-button")).to_have_attribute("aria-pressed", "false")
            await expect(cy.locator("#camera-button")).to_have_attribute("aria-pressed", "false")
            cy_id = await cy.locator("#stage .tile.self").get_attribute("data-participant")
            assert cy_id
            await expect(ada.locator(_tile(ada, cy_id))).not_to_have_class(CAMERA_OFF)
            await _playing(ada, _tile(ada, cy_id))
            await _playing(cy, _tile(cy, ada_id))
        finally:
            expect.set_options(timeout=5_000)
            await browser.close()
    await host.close()
