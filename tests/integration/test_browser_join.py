"""The join page in real Chromium (Debian's, driven by Playwright) against the twin: two people
open the invite link, join, see each other in the roster, and chat."""

from __future__ import annotations

import uuid

from playwright.async_api import Page, async_playwright, expect

from tests.integration.browser import ARTIFACTS, CHROMIUM_ARGS
from tests.integration.client import Api
from tests.integration.conftest import Twin


async def _join(page: Page, url: str, name: str) -> None:
    await page.goto(url)
    await expect(page.locator("#title")).to_have_text("Browser standup")
    await page.fill("#name", name)
    await page.get_by_role("button", name="Join").click()
    await expect(page.locator("#room")).to_be_visible(timeout=10_000)
    await expect(page.locator("#join")).to_be_hidden()


async def test_two_browsers_join_from_the_invite_link_and_chat(twin: Twin, chromium: str) -> None:
    host = Api(twin.base_url)
    await host.sign_up(f"browser-{uuid.uuid4().hex[:6]}@example.com")
    meeting = await host.create_meeting(title="Browser standup")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            ada = await (await browser.new_context()).new_page()
            bob = await (await browser.new_context()).new_page()
            await _join(ada, meeting["join_url"], "Ada")
            await _join(bob, meeting["join_url"], "Bob")
            await expect(ada.locator("#people li")).to_have_count(2)
            await expect(bob.locator("#people li")).to_have_count(2)
            await expect(ada.locator("#people")).to_contain_text("Bob")

            await bob.fill("#text", "hello from Bob")
            await bob.get_by_role("button", name="Send").click()
            await expect(ada.locator("#chat")).to_contain_text("Bob: hello from Bob")
            await expect(bob.locator("#chat")).to_contain_text("Bob: hello from Bob")
            await ada.screenshot(path=str(ARTIFACTS / "join-page-room.png"), full_page=True)
        finally:
            await browser.close()
    await host.close()
