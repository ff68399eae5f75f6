"""The join page in real Chromium (Debian's, driven by Playwright) against the twin, without
media: the invite link shows the meeting, a passcode is asked for and checked, two people join
and chat, a denied guest learns it on the page, and a link to no meeting says so without
turning the camera on."""

from __future__ import annotations

import uuid

from playwright.async_api import Page, async_playwright, expect

from tests.integration.browser import ARTIFACTS, MEDIA_ARGS, axe_violations
from tests.integration.client import Api, SignalingClient
from tests.integration.conftest import Twin


async def _open(page: Page, url: str, name: str) -> None:
    await page.goto(url)
    await expect(page.locator("#title")).to_have_text("Browser standup")
    await page.fill("#name", name)


async def _join(page: Page, url: str, name: str, passcode: str | None = None) -> None:
    await _open(page, url, name)
    if passcode is not None:
        await page.fill("#passcode", passcode)
    await page.get_by_role("button", name="Join", exact=True).click()
    await expect(page.locator("#room")).to_be_visible(timeout=10_000)
    await expect(page.locator("#lobby")).to_be_hidden()


async def test_two_browsers_join_with_a_passcode_and_chat(twin: Twin, chromium: str) -> None:
    host = Api(twin.base_url)
    await host.sign_up(f"browser-{uuid.uuid4().hex[:6]}@example.com")
    meeting = await host.create_meeting(
        title="Browser standup", passcode="4242", allow_before_host=True
    )
    async with async_playwright() as playwright:
        # Fake devices so the pre-join check has a camera; no media node runs in this twin, so
        # the room says audio and video could not start and everything else still works.
        browser = await playwright.chromium.launch(executable_path=chromium, args=MEDIA_ARGS)
        try:
            ada = await (await browser.new_context()).new_page()
            bob = await (await browser.new_context()).new_page()
            await _open(ada, meeting["join_url"], "Ada")
            await expect(ada.locator("#passcode")).to_be_visible()
            await ada.fill("#passcode", "0000")
            await ada.get_by_role("button", name="Join", exact=True).click()
            await expect(ada.locator("#status")).to_have_text("That passcode is not right.")
            await expect(ada.locator("#lobby")).to_be_visible()

            await _join(ada, meeting["join_url"], "Ada", passcode="4242")
            await _join(bob, meeting["join_url"], "Bob", passcode="4242")
            await ada.locator("#people-button").click()
            await expect(ada.locator("#people .person")).to_have_count(2)
            await expect(ada.locator("#people")).to_contain_text("Bob")
            await expect(ada.locator("#stage .tile")).to_have_count(2)

            await bob.locator("#chat-button").click()
            await bob.fill("#text", "hello from Bob")
            await bob.get_by_role("button", name="Send").click()
            await expect(bob.locator("#chat")).to_contain_text("hello from Bob")
            await expect(ada.locator("#chat-badge")).to_have_text("1")
            await ada.locator("#tab-chat").click()
            await expect(ada.locator("#chat")).to_contain_text("hello from Bob")

            # Leaving shows the end screen, and Ada sees Bob go.
            await bob.get_by_role("button", name="Leave").click()
            await expect(bob.locator("#ended-title")).to_have_text("You left the meeting")
            await expect(ada.locator("#stage .tile")).to_have_count(1)
        finally:
            await browser.close()
    await host.close()


async def test_a_denied_guest_is_told_on_the_page(twin: Twin, chromium: str) -> None:
    host = Api(twin.base_url)
    await host.sign_up(f"deny-{uuid.uuid4().hex[:6]}@example.com")
    meeting = await host.create_meeting(title="Browser standup", waiting_room=True)
    grant = await host.post(f"/api/meetings/{meeting['meeting_id']}/join", {"display_name": "Host"})
    host_ws = await SignalingClient.enter(twin.ws_url, grant.json())
    await host_ws.ok("join")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=MEDIA_ARGS)
        try:
            guest = await (await browser.new_context()).new_page()
            await _open(guest, meeting["join_url"], "Gus")
            await guest.get_by_role("button", name="Join", exact=True).click()
            await expect(guest.locator("#waiting")).to_be_visible(timeout=10_000)
            joined = await host_ws.wait_event("waiting.joined")
            await host_ws.ok(
                "deny", {"participant_id": joined["data"]["participant"]["participant_id"]}
            )
            await expect(guest.locator("#ended-title")).to_have_text("The host did not let you in")

            # A link to no meeting: the page says so, opens no camera, and offers no Join.
            context = await browser.new_context()
            await context.add_init_script(
                "window.mediaAsked = 0; const ask = navigator.mediaDevices.getUserMedia"
                ".bind(navigator.mediaDevices); navigator.mediaDevices.getUserMedia ="
                " (...a) => { window.mediaAsked += 1; return ask(...a); };"
            )
            lost = await context.new_page()
            await lost.goto(f"{twin.base_url}/join.html?m=zzzz-zzzz-zz")
            await expect(lost.locator("#title")).to_have_text("Meeting not found")
            await expect(lost.get_by_role("alert")).to_contain_text("zzzz-zzzz-zz")
            await expect(lost.get_by_role("button", name="Join")).to_be_disabled()
            await expect(lost.locator("#name")).to_be_hidden()
            await expect(
                lost.get_by_role("link", name="Go to Townhall's home page")
            ).to_be_visible()
            await lost.screenshot(path=str(ARTIFACTS / "join-unknown.png"))
            await lost.wait_for_timeout(300)  # what would have opened the camera has run
            assert await lost.evaluate("window.mediaAsked") == 0
            assert await lost.locator("#prejoin video").count() == 0
            assert await axe_violations(lost) == []
        finally:
            await browser.close()
    await host_ws.close()
    await host.close()
