"""Webhooks on the organisation page (web/organisation.html) in real Chromium against the twin,
under the production CSP, to a real receiver on loopback (tests/integration/webhook_receiver.py)
with the retry schedule on the fast clock: an owner is refused without a URL (nothing sent) and
by the API for a private address (its message beside the form); subscribes; sees the signing
secret once (copied; the receiver verifies the deliveries with it); a session's events show in
the delivery log as delivered; with the receiver answering 500 they fail, the platform turns
the subscription off and the card says why; the owner rotates the secret (both sign for a
day), turns it on, replays one failed delivery and then all the rest (same webhook-ids, signed
with both secrets), turns it off by hand and deletes it. A member is told whom to ask."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
from playwright.async_api import Browser, Locator, expect

from infra.twin.server import TwinOptions
from tests.integration.browser import axe_violations
from tests.integration.client import Api, entered
from tests.integration.conftest import Twin, _start
from tests.integration.test_browser_organisation import _signed_in
from tests.integration.webhook_receiver import Receiver, verify

pytestmark = pytest.mark.asyncio(loop_scope="module")

expect.set_options(timeout=15_000)

# As tests/integration/test_webhooks.py: the 27-hour retry schedule in about a second.
TIME_SCALE = 1e-5


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    options = TwinOptions(webhook_retry_time_scale=TIME_SCALE, webhook_timeout_seconds=1.0)
    yield from _start(tmp_path_factory, options)


class Switchable(Receiver):
    """Answers 204, or 500 to everything while `failing`."""

    failing = False

    def _answer(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        return (500, {}) if self.failing else (204, {})


async def _refreshed_until(card: Locator, rows: Locator, count: int) -> None:
    """Press the log's Refresh, as a person waiting for events would, until `rows` number
    `count`."""
    deadline = time.monotonic() + 15
    while await rows.count() != count:
        assert time.monotonic() < deadline, await card.locator(".hook-log").inner_text()
        await card.get_by_role("button", name="Refresh").click()
        await card.page.wait_for_timeout(300)


async def test_an_owner_subscribes_sees_deliveries_replays_rotates_and_deletes(
    twin: Twin, room_browser: Browser
) -> None:
    owner_api, member_api = Api(twin.base_url), Api(twin.base_url)
    tag = uuid.uuid4().hex[:8]
    owner = await owner_api.sign_up(f"olga-{tag}@example.com", "Olga Owner")
    member = await member_api.sign_up(f"milo-{tag}@example.com", "Milo Member")
    added = await owner_api.post(
        "/api/v1/organisation/members", {"email": member["email"], "role": "member"}
    )
    assert added.status_code == 201, added.text
    meeting_id = (await owner_api.create_meeting(title="Board review"))["meeting_id"]

    olga = await _signed_in(room_browser, twin, "Olga", owner["refresh_token"])
    page = olga.page
    posts: list[str] = []
    page.on(
        "request",
        lambda r: posts.append(r.url) if r.method == "POST" and "/webhooks" in r.url else None,
    )
    receiver = Switchable()
    with receiver:
        await page.goto(f"{twin.base_url}/organisation.html")
        await expect(page.locator("#hooks-status")).to_have_text(
            "No webhooks yet. Add one below when an app needs to hear about events as they happen."
        )
        form = page.locator("#hook-form")
        add = form.get_by_role("button", name="Add subscription")

        # Refused in the page (no URL), then by the API (a private address): nothing listed.
        await add.click()
        await expect(page.locator("#hook-error")).to_have_text(
            "Give the URL the app receives events at."
        )
        await expect(form.get_by_label("URL")).to_be_focused()
        await expect(form.get_by_label("URL")).to_have_attribute("aria-invalid", "true")
        assert posts == []
        await form.get_by_label("URL").fill("https://10.20.30.40/townhall")
        await add.click()
        await expect(page.locator("#hook-error")).to_have_text("Choose at least one event.")
        await expect(form.get_by_label("session.started")).to_be_focused()
        assert posts == []
        await expect(form.get_by_label("session.ended")).to_have_accessible_description(
            "A session ends (the host ended it, or an app through the API)."
        )
        await form.get_by_label("session.started").check()
        await form.get_by_label("session.ended").check()
        await add.click()
        await expect(page.locator("#hook-error")).to_have_text(
            "Could not add the subscription: url's address is not a public internet address"
        )
        await expect(form.get_by_label("URL")).to_be_focused()
        assert len(posts) == 1
        await expect(page.locator("li.webhook")).to_have_count(0)

        # Subscribed: the secret once, copied; focus back on the new card.
        await form.get_by_label("URL").fill(receiver.url("/hook"))
        await form.get_by_label("Description").fill("CRM sync")
        await add.click()
        dialog = page.get_by_role("dialog", name="Your webhook signing secret")
        await expect(dialog).to_be_visible()
        await expect(dialog).to_contain_text("you won't see it again")
        field = dialog.get_by_label(f"Signing secret for {receiver.url('/hook')}")
        await expect(field).to_be_focused()
        secret = await field.input_value()
        assert secret.startswith("whsec_"), secret
        await dialog.get_by_role("button", name="Copy").click()
        await expect(dialog.get_by_role("status")).to_contain_text("Copied to the clipboard")
        assert await page.evaluate("navigator.clipboard.readText()") == secret
        await page.keyboard.press("Escape")
        await expect(dialog).to_be_hidden()
        card = page.locator("li.webhook")
        await expect(card.get_by_role("heading", name=receiver.url("/hook"))).to_be_focused()
        assert await page.evaluate("document.getElementById('key-secret').value") == ""
        await expect(card).to_contain_text("CRM sync")
        await expect(card.locator(".hook-types")).to_have_text("session.startedsession.ended")
        await expect(card.locator(".hook-state")).to_have_text("On")
        await expect(form.get_by_label("URL")).to_have_value("")

        # A session: both events delivered, signed with the secret the page showed.
        host, _ = await entered(twin.ws_url, owner_api, meeting_id, "Olga")
        await host.ok("end")
        await host.close()
        await card.get_by_role("button", name="Delivery log").click()
        await expect(card.get_by_role("button", name="Hide delivery log")).to_have_attribute(
            "aria-expanded", "true"
        )
        log = card.locator(".hook-log")
        await _refreshed_until(card, log.locator(".delivery-ok"), 2)
        await expect(log.locator(".delivery").first).to_contain_text("session.ended")
        await expect(log.locator(".delivery").first).to_contain_text("1 attempt · answered 204")
        await expect(card.get_by_role("button", name="Replay all failed")).to_be_hidden()
        assert len(receiver.received) == 2
        assert all(verify(secret, r.headers, r.body) for r in receiver.received)

        # The receiver fails: every attempt answers 500, the deliveries fail, and the platform
        # turns the subscription off, saying why; nothing can be replayed while it is off.
        receiver.failing = True
        host, _ = await entered(twin.ws_url, owner_api, meeting_id, "Olga")
        await host.ok("end")
        await host.close()
        await _refreshed_until(card, log.locator(".delivery-failed"), 2)
        failed = log.locator(".delivery").filter(has=page.locator(".delivery-failed"))
        # The delivery whose last attempt turned it off ran the whole schedule (the other
        # may have been cut short: "the subscription is disabled").
        exhausted = failed.filter(has_text="8 attempts · last: answered 500").first
        await expect(exhausted).to_be_visible()
        await expect(card.locator(".hook-state")).to_have_text("Off")
        await expect(card.locator(".hook-disabled")).to_contain_text("Turned off by Townhall on")
        await expect(card.locator(".hook-disabled")).to_contain_text("every attempt failed")
        await expect(log.get_by_role("button", name="Replay")).to_have_count(0)
        await expect(log.locator(".log-status")).to_contain_text(
            "Turn the subscription on to replay the failed ones."
        )
        await exhausted.locator("summary").click()
        await expect(exhausted.locator(".attempt-list li")).to_have_count(8)
        violations = await axe_violations(page)
        assert not violations, json.dumps(violations, indent=1)

        # Rotated (after a confirmation Cancel backs out of): the new secret once; the old one
        # keeps signing alongside it for a day.
        rotate = card.get_by_role("button", name="Rotate secret")
        await rotate.click()
        await expect(card.locator(".confirm-rotate")).to_contain_text("for 24 hours")
        await card.get_by_role("button", name="Cancel").click()
        await expect(rotate).to_be_focused()
        await rotate.click()
        await card.get_by_role("button", name="Yes, rotate").click()
        dialog = page.get_by_role("dialog", name="The new signing secret")
        await expect(dialog).to_contain_text("keeps signing alongside it for 24 hours")
        new_secret = await dialog.get_by_role("textbox").input_value()
        assert new_secret.startswith("whsec_") and new_secret != secret
        violations = await axe_violations(page)
        assert not violations, json.dumps(violations, indent=1)
        await dialog.get_by_role("button", name="I've copied it").click()
        await expect(card.get_by_role("heading", name=receiver.url("/hook"))).to_be_focused()
        await expect(card.locator(".hook-secrets")).to_contain_text(
            "the previous one also signs until"
        )

        # The receiver recovers; turned on, one failed delivery replayed, then all the rest.
        receiver.failing = False
        failed_ids = set(await failed.evaluate_all("rows => rows.map(r => r.dataset.deliveryId)"))
        assert len(failed_ids) == 2
        await card.get_by_role("button", name="Turn on").click()
        await expect(card.locator(".hook-state")).to_have_text("On")
        await expect(card.locator(".hook-disabled")).to_be_hidden()
        await expect(log.get_by_role("button", name="Replay", exact=True)).to_have_count(2)
        before = len(receiver.received)
        await log.get_by_role("button", name="Replay", exact=True).first.click()
        await _refreshed_until(card, log.locator(".delivery-failed"), 1)
        await card.get_by_role("button", name="Replay all failed").click()
        await _refreshed_until(card, log.locator(".delivery-ok"), 4)
        await expect(card.get_by_role("button", name="Replay all failed")).to_be_hidden()
        await expect(log.locator(".delivery").first).to_contain_text("replayed once")
        replayed = [r for r in receiver.received[before:] if r.status == 204]
        assert {r.webhook_id for r in replayed} == failed_ids
        assert all(verify(secret, r.headers, r.body) for r in replayed)
        assert all(verify(new_secret, r.headers, r.body) for r in replayed)

    # Turned off by hand, then deleted after a confirmation "Keep it" backs out of.
    await card.get_by_role("button", name="Turn off").click()
    await expect(card.locator(".hook-disabled")).to_contain_text("Turned off by hand")
    delete = card.get_by_role("button", name="Delete")
    await delete.click()
    await expect(card.get_by_role("button", name="Keep it")).to_be_focused()
    await card.get_by_role("button", name="Keep it").click()
    await expect(delete).to_be_focused()
    await delete.click()
    await expect(card.locator(".confirm-remove")).to_contain_text("This cannot be undone.")
    await card.get_by_role("button", name="Yes, delete").click()
    await expect(page.locator("li.webhook")).to_have_count(0)
    await expect(page.locator("#hooks-status")).to_contain_text("No webhooks yet.")
    await expect(page.locator("#hook-form").get_by_label("URL")).to_be_focused()
    listed = await owner_api.get("/api/v1/webhooks")
    assert listed.status_code == 200 and listed.json()["items"] == [], listed.text
    assert olga.errors == []
    await olga.context.close()

    # A member: whom to ask, no webhook controls, and no call for them.
    milo = await _signed_in(room_browser, twin, "Milo", member["refresh_token"])
    asked: list[str] = []
    milo.page.on("request", lambda r: asked.append(r.url) if "/webhooks" in r.url else None)
    await milo.page.goto(f"{twin.base_url}/organisation.html")
    await expect(milo.page.locator("#hooks-readonly")).to_have_text(
        "Only owners and admins of the organisation add, change and delete webhooks and see"
        f" their deliveries. Ask Olga Owner ({owner['email']}) if an app needs to hear about"
        " events."
    )
    await expect(milo.page.locator("#hook-form")).to_be_hidden()
    await expect(milo.page.locator("#hook-list")).to_be_hidden()
    assert asked == []
    assert milo.errors == []
    await milo.context.close()
    await owner_api.close()
    await member_api.close()
