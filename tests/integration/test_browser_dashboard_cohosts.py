"""The dashboard's co-host field and the join page of a co-host, in real Chromium (Debian's,
driven by Playwright) against the twin: the host lists co-hosts when scheduling, bad lists
are refused with a clear message and nothing is created, an edit shows and changes the list;
a listed co-host, signed in, gets "Start" on the invite link's page and no passcode field."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.integration.browser import CHROMIUM_ARGS, axe_violations
from tests.integration.client import Api
from tests.integration.conftest import Twin

# Several browser tests share this machine's cores: give page assertions room.
expect.set_options(timeout=15_000)

# Nobody here needs a camera: the join page's check is refused its devices.
NO_DEVICES = (
    "navigator.mediaDevices.getUserMedia = () =>"
    " Promise.reject(new DOMException('no devices in this test', 'NotAllowedError'));"
)


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def _signed_in(browser: Browser, twin: Twin, refresh_token: str) -> BrowserContext:
    context = await browser.new_context(base_url=twin.base_url, locale="en-US")
    # Signed in as web/api.js keeps it (only when absent: the token rotates on use).
    await context.add_init_script(
        f"if (!localStorage.getItem('townhall.refresh')) "
        f"localStorage.setItem('townhall.refresh', {json.dumps(refresh_token)});"
    )
    await context.add_init_script(NO_DEVICES)
    return context


def _errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


async def _submit(page: Page, method: str) -> dict[str, Any]:
    form = page.locator("#schedule-form")
    button = "Schedule meeting" if method == "POST" else "Save changes"
    async with page.expect_response(
        lambda r: "/api/meetings" in r.url and r.request.method == method
    ) as answer:
        await form.get_by_role("button", name=button).click()
    response = await answer.value
    assert response.status in (200, 201), await response.text()
    meeting: dict[str, Any] = await response.json()
    return meeting


async def test_the_host_lists_cohosts_and_a_cohost_gets_start_on_the_join_page(
    twin: Twin, browser: Browser
) -> None:
    host_api, cohost_api = Api(twin.base_url), Api(twin.base_url)
    host_email = f"dash-{uuid.uuid4().hex[:8]}@example.com"
    cohost_email = f"cora-{uuid.uuid4().hex[:8]}@example.com"
    host = await host_api.sign_up(host_email, "Hana Host")
    cohost = await cohost_api.sign_up(cohost_email, "Cora Cohost")
    await host_api.close()
    await cohost_api.close()

    context = await _signed_in(browser, twin, host["refresh_token"])
    page = await context.new_page()
    errors = _errors(page)
    sent: list[str] = []
    page.on(
        "request",
        lambda r: sent.append(r.method) if r.url.endswith("/api/meetings") else None,
    )
    await page.goto("/dashboard.html")
    await expect(page.locator("#list-status")).to_contain_text("No upcoming meetings")
    form = page.locator("#schedule-form")
    field = form.get_by_label("Co-hosts")
    await expect(field).to_have_attribute("aria-describedby", "cohosts-hint")
    await expect(page.locator("#cohosts-hint")).to_contain_text("Up to 10 account emails")
    await form.get_by_label("Title").fill("Board review")
    await form.get_by_label("Passcode").fill("8642")

    # Bad lists: a clear message on the field, and nothing is sent.
    for text, message in (
        ("cora, raj@example.com", "Co-hosts: “cora” is not an email address."),
        (host_email.upper(), "Co-hosts: you host the meeting already; list other people."),
        (", ".join(f"p{i}@example.com" for i in range(11)), "List at most 10 co-hosts."),
    ):
        await field.fill(text)
        await form.get_by_role("button", name="Schedule meeting").click()
        await expect(page.locator("#schedule-error")).to_have_text(message)
        await expect(field).to_have_attribute("aria-invalid", "true")
        await expect(field).to_be_focused()
    assert "POST" not in sent
    await expect(page.locator("li.meeting")).to_have_count(0)

    # A good one, typed loosely: sent and stored normalized, each once.
    await field.fill(f" {cohost_email.upper()},\n{cohost_email} ; ")
    meeting = await _submit(page, "POST")
    assert meeting["cohosts"] == [cohost_email]
    card = page.locator(f'li[data-meeting-id="{meeting["meeting_id"]}"]')
    await expect(card.locator(".rule")).to_contain_text(f"co-hosts {cohost_email}")
    await expect(field).to_have_value("")  # the form starts afresh

    # Edit: the list comes back in the form; emptied and saved, it is gone.
    await card.get_by_role("button", name="Edit", exact=True).click()
    await expect(field).to_have_value(cohost_email)
    await field.fill("")
    saved = await _submit(page, "PUT")
    assert saved["cohosts"] == []
    await expect(card.locator(".rule")).not_to_contain_text("co-hosts")
    await card.get_by_role("button", name="Edit", exact=True).click()
    await expect(field).to_have_value("")
    await field.fill(cohost_email)
    saved = await _submit(page, "PUT")
    assert saved["cohosts"] == [cohost_email] and saved["passcode"] == "8642"
    violations = await axe_violations(page)
    assert not violations, json.dumps(violations, indent=1)
    assert errors == []

    # The co-host, signed in, opens the invite link: "Start", no name or passcode to type.
    co_context = await _signed_in(browser, twin, cohost["refresh_token"])
    co_page = await co_context.new_page()
    co_errors = _errors(co_page)
    await co_page.goto(f"/join.html?m={meeting['meeting_id']}")
    await expect(co_page.locator("#signed-in-note")).to_contain_text("co-host of this meeting")
    await expect(co_page.locator("#join-button")).to_have_text("Start")
    await expect(co_page.locator("#passcode-row")).to_be_hidden()
    await expect(co_page.locator("#name-row")).to_be_hidden()
    assert co_errors == []
    await co_context.close()
    await context.close()
