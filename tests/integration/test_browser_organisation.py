"""The organisation page (web/organisation.html) in real Chromium (Debian's, driven by
Playwright) against the twin, under the production CSP: an owner reaches it from the
dashboard, sees the members and their roles, is refused a key without a name or a scope (and
nothing is sent), sees the API's own refusal beside the form, creates a key with two scopes,
sees it once in a dialog (copied, focus in and back out), uses it with httpx on the partner
API (200), revokes it in the page, and the same call is then 401. A member sees the
organisation and whom to ask for a key, and no key controls."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.integration.browser import axe_violations
from tests.integration.client import Api
from tests.integration.conftest import Twin
from tests.integration.room_pages import Person, new_person

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Several browser tests share this machine's cores: give page assertions room.
expect.set_options(timeout=15_000)


async def _signed_in(browser: Browser, twin: Twin, name: str, refresh_token: str) -> Person:
    """A profile under the production CSP (a violation is in `errors`), signed in, that may
    use the clipboard."""
    person = await new_person(browser, name, refresh_token=refresh_token)
    await person.context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=twin.base_url
    )
    return person


async def test_an_owner_creates_uses_and_revokes_a_key_and_a_member_may_not(
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
    await owner_api.create_meeting(title="Board review")

    olga = await _signed_in(room_browser, twin, "Olga", owner["refresh_token"])
    page = olga.page
    posts: list[str] = []
    page.on(
        "request",
        lambda r: posts.append(r.url) if r.method == "POST" and "/api/v1/keys" in r.url else None,
    )
    await page.goto(f"{twin.base_url}/dashboard.html")
    # Loaded (its session refreshed and kept) before leaving: a refresh cut short by leaving
    # the page would spend the refresh token without keeping its successor.
    await expect(page.locator("li.meeting")).to_have_count(1)
    await (
        page.get_by_role("navigation", name="Account")
        .get_by_role("link", name="Organisation")
        .click()
    )
    await page.wait_for_url("**/organisation.html")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Olga Owner's organisation")
    await expect(page.locator("#org-status")).to_have_text("You are an owner of this organisation.")
    members = page.locator("#member-list li")
    await expect(members).to_have_count(2)
    await expect(members.filter(has_text="Olga Owner (you)")).to_contain_text("Owner")
    await expect(members.filter(has_text="Milo Member")).to_contain_text("Member")
    await expect(page.locator("#keys-status")).to_have_text(
        "No keys yet. Create one below when an app needs to use the API."
    )

    # Refused in the page: no name, then no scope; each says why at its field, nothing sent.
    form = page.locator("#key-form")
    create = form.get_by_role("button", name="Create key")
    await create.click()
    await expect(page.locator("#key-error")).to_have_text(
        "Give the key a name, such as the app that will use it."
    )
    await expect(form.get_by_label("Name")).to_be_focused()
    await expect(form.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
    await form.get_by_label("Name").fill("CRM sync")
    await create.click()
    await expect(page.locator("#key-error")).to_have_text("Choose at least one scope.")
    await expect(form.get_by_label("meetings:read")).to_be_focused()
    assert posts == []

    # Refused by the API (a control character in the name): its message, beside the form;
    # no key listed, no dialog.
    await form.get_by_label("Name").fill("CRM\x01sync")
    await form.get_by_label("meetings:read").check()
    await create.click()
    await expect(page.locator("#key-error")).to_contain_text(
        "Could not create the key: name must not contain control"
    )
    assert len(posts) == 1
    await expect(page.locator("li.api-key")).to_have_count(0)
    await expect(page.locator("#key-dialog")).to_be_hidden()

    # Created with two scopes (each described), shown once, copied.
    await expect(form.get_by_label("sessions:read")).to_have_accessible_description(
        "Read past sessions and their summaries: attendance, chat, polls, Q&A."
    )
    await form.get_by_label("Name").fill("CRM sync")
    await form.get_by_label("sessions:read").check()
    await create.click()
    dialog = page.get_by_role("dialog", name="Your new API key")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("you won't see it again")
    secret = dialog.get_by_label("API key “CRM sync”")
    await expect(secret).to_be_focused()
    key = await secret.input_value()
    assert key.startswith("thk_") and len(key) == len("thk_") + 16 + 1 + 43, key
    await dialog.get_by_role("button", name="Copy").click()
    await expect(dialog.get_by_role("status")).to_contain_text("Copied to the clipboard")
    assert await page.evaluate("navigator.clipboard.readText()") == key
    violations = await axe_violations(page)
    assert not violations, json.dumps(violations, indent=1)
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    key_id = key.split("_")[1]
    card = page.locator(f'li[data-key-id="{key_id}"]')
    await expect(card.get_by_role("heading", name="CRM sync")).to_be_focused()
    await expect(card).to_contain_text(f"thk_{key_id}_…")
    await expect(card.locator(".key-scope-list")).to_have_text("meetings:readsessions:read")
    await expect(card.locator(".key-used")).to_have_text("Never")
    # The secret left the page with the dialog, and the form starts afresh.
    assert await page.evaluate("document.getElementById('key-secret').value") == ""
    await expect(form.get_by_label("Name")).to_have_value("")
    await expect(form.get_by_label("meetings:read")).not_to_be_checked()

    async with httpx.AsyncClient(base_url=twin.base_url, timeout=15) as partner:
        headers = {"authorization": f"Bearer {key}"}
        listed = await partner.get("/api/v1/meetings", headers=headers)
        assert listed.status_code == 200, listed.text
        assert [m["title"] for m in listed.json()["items"]] == ["Board review"]

        # Revoked in the page, after a confirmation that "Keep it" can back out of.
        await card.get_by_role("button", name="Revoke").click()
        keep = card.get_by_role("button", name="Keep it")
        await expect(keep).to_be_focused()
        await keep.click()
        await expect(card.get_by_role("button", name="Revoke")).to_be_focused()
        assert (await partner.get("/api/v1/meetings", headers=headers)).status_code == 200
        await card.get_by_role("button", name="Revoke").click()
        await expect(card).to_contain_text("Apps that use it are refused from their next request")
        await card.get_by_role("button", name="Yes, revoke").click()
        await expect(card.locator(".key-state")).to_have_text("Revoked")
        await expect(card.get_by_role("button", name="Revoke")).to_be_hidden()
        await expect(page.locator("#keys-status")).to_have_text("0 active keys, 1 revoked")
        refused = await partner.get("/api/v1/meetings", headers=headers)
        assert refused.status_code == 401, refused.text

    # After a reload, the list is the API's: the key revoked, and it was used once.
    await page.reload()
    card = page.locator(f'li[data-key-id="{key_id}"]')
    await expect(card.locator(".key-state")).to_have_text("Revoked")
    await expect(card.locator(".key-used time")).to_have_count(1)
    violations = await axe_violations(page)
    assert not violations, json.dumps(violations, indent=1)
    assert olga.errors == []
    await olga.context.close()

    # A member: the organisation and whom to ask, no key controls (and no call for keys).
    milo = await _signed_in(room_browser, twin, "Milo", member["refresh_token"])
    member_page = milo.page
    asked: list[str] = []
    member_page.on("request", lambda r: asked.append(r.url) if "/api/v1/keys" in r.url else None)
    await member_page.goto(f"{twin.base_url}/organisation.html")
    await expect(member_page.locator("#org-status")).to_have_text(
        "You are a member of this organisation."
    )
    await expect(member_page.locator("#keys-readonly")).to_have_text(
        "Only owners and admins of the organisation create, see and revoke API keys."
        f" Ask Olga Owner ({owner['email']}) if an app needs one."
    )
    await expect(member_page.locator("#key-form")).to_be_hidden()
    await expect(member_page.locator("#member-list li")).to_have_count(2)
    assert asked == []
    violations = await axe_violations(member_page)
    assert not violations, json.dumps(violations, indent=1)
    assert milo.errors == []
    await milo.context.close()
    await owner_api.close()
    await member_api.close()
