"""The collaboration panels inside the real meeting room (web/join.html mounts web/collab/), in
Debian's Chromium against the twin: a signed-in host starts a poll, a guest votes and both see
the live result; a stroke drawn on one page appears on the other; Q&A goes both ways. Then the
host's summary page after the meeting: tables, downloads with the bearer, and an axe scan."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.integration.browser import ARTIFACTS, AXE_SCRIPT, MEDIA_ARGS
from tests.integration.client import Api
from tests.integration.conftest import Twin

pytestmark = pytest.mark.asyncio(loop_scope="module")

# CloudFront's policy (infra/stacks/edge.py) without inline hashes: a panel that needed an
# inline style or script would fail here.
CSP = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)

# Playwright's route.fulfill (which adds the CSP) makes Chromium treat the page as not local,
# and its Local Network Access checks then block the page's WebSocket to 127.0.0.1. Only the
# last --disable-features flag counts, so the media flags' one is merged in.
ARGS = [
    *(a for a in MEDIA_ARGS if not a.startswith("--disable-features=")),
    "--disable-features=WebRtcHideLocalIpsWithMdns,LocalNetworkAccessChecks",
]

# How many pixels of the board are not the background colour (the board is #fafafa).
INKED = """() => {
  const c = document.querySelector('#whiteboard-panel canvas');
  if (!c || !c.width) return -1;  // the panel is not mounted yet
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && !(d[i] > 240 && d[i+1] > 240 && d[i+2] > 240)) n++;
  return n;
}"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def _context(
    browser: Browser, errors: list[str], refresh_token: str | None = None
) -> BrowserContext:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})

    async def add_policy(route: Any) -> None:
        response = await route.fetch()
        await route.fulfill(
            response=response, headers={**response.headers, "content-security-policy": CSP}
        )

    await context.route("**/*.html*", add_policy)
    if refresh_token:
        # Signed in the way web/api.js keeps a session (the refresh token rotates on use).
        await context.add_init_script(
            "if (!localStorage.getItem('townhall.refresh')) "
            f"localStorage.setItem('townhall.refresh', {refresh_token!r});"
        )
    return context


async def _page(context: BrowserContext, errors: list[str]) -> Page:
    page = await context.new_page()
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and "Content Security Policy" in m.text
            else None
        ),
    )
    return page


async def _join(page: Page, url: str, name: str) -> None:
    await page.goto(url)
    await expect(page.locator("#title")).not_to_have_text("Join a meeting", timeout=15_000)
    if await page.locator("#name").is_visible():  # the signed-in host is not asked for a name
        await page.fill("#name", name)
    await page.locator("#join-button").click()
    await expect(page.locator("#room")).to_be_visible(timeout=15_000)


async def _inked(page: Page, predicate: Any, timeout: float = 10) -> int:
    """Wait (bounded) until the board's inked pixel count satisfies `predicate`. Polled with
    evaluate, because wait_for_function evaluates a string, which the CSP refuses."""
    count = -1
    for _ in range(int(timeout / 0.1)):
        count = await page.evaluate(INKED)
        if predicate(count):
            return count
        await page.wait_for_timeout(100)
    raise AssertionError(f"the whiteboard never got there: {count} inked pixels")


async def _axe(page: Page) -> list[Any]:
    """What axe_violations (tests/integration/browser.py) reports, under the page's CSP: its
    add_script_tag is an inline script, which the policy refuses, so axe-core goes in through
    evaluate (DevTools, not subject to the CSP) instead."""
    await page.evaluate(AXE_SCRIPT.read_text() + "\n;undefined")
    result = await page.evaluate("async () => JSON.stringify(await axe.run(document))")
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in json.loads(result)["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def _open(page: Page, tab: str) -> None:
    if not await page.locator("#drawer").is_visible():
        await page.locator("#apps-button").click()
    await page.get_by_role("tab", name=tab).click()
    await expect(page.get_by_role("tab", name=tab)).to_have_attribute("aria-selected", "true")


async def test_polls_whiteboard_and_qa_between_two_pages(twin: Twin, browser: Browser) -> None:
    host_api = Api(twin.base_url)
    session = await host_api.sign_up(f"collab-{uuid.uuid4().hex[:6]}@example.com", name="Ada")
    info = await host_api.create_meeting(title="Collab review")
    errors: list[str] = []
    ada_ctx = await _context(browser, errors, session["refresh_token"])
    bob_ctx = await _context(browser, errors)
    try:
        ada, bob = await _page(ada_ctx, errors), await _page(bob_ctx, errors)
        await _join(ada, info["join_url"], "Ada")
        await _join(bob, info["join_url"], "Bob")
        await expect(
            ada.locator("#polls-panel .polls-panel, #polls-panel.polls-panel")
        ).to_have_count(1)

        # Poll: the host's form, the guest's vote, live results on both pages.
        await _open(ada, "Polls")
        panel = ada.locator("#polls-panel")
        await panel.get_by_label("Question").fill("Ship on Friday?")
        await panel.get_by_label("Option 1", exact=True).fill("Yes")
        await panel.get_by_label("Option 2", exact=True).fill("No")
        await panel.get_by_role("button", name="Add option").click()
        await panel.get_by_label("Option 3", exact=True).fill("Maybe")
        await panel.get_by_role("button", name="Start poll").click()
        await expect(panel.locator(".poll")).to_have_count(1)
        await expect(bob.locator("#apps-badge")).to_have_text("1")
        await _open(bob, "Polls")
        await expect(bob.locator("#apps-badge")).to_be_hidden()
        bob_panel = bob.locator("#polls-panel")
        await expect(bob_panel.locator(".poll-form")).to_be_hidden()  # guests cannot create
        # Bob votes with the keyboard only: focus the choice, Space to pick, Tab, Enter.
        await bob_panel.get_by_label("Maybe").focus()
        await bob.keyboard.press("Space")
        await expect(bob_panel.get_by_label("Maybe")).to_be_checked()
        await bob.keyboard.press("Tab")
        await expect(bob_panel.get_by_role("button", name="Vote")).to_be_focused()
        await bob.keyboard.press("Enter")
        await expect(bob_panel).to_contain_text("You voted: Maybe")
        for p in (panel, bob_panel):
            result = p.locator(".poll-result").nth(2)
            await expect(result).to_contain_text("1 vote, 100%")
            await expect(p.locator(".poll-state")).to_contain_text("1 voter")
        await panel.get_by_label("Yes").check()
        await panel.get_by_role("button", name="Vote").click()
        await expect(bob_panel.locator(".poll-result").nth(0)).to_contain_text("1 vote, 50%")
        await panel.get_by_role("button", name="Close poll").click()
        await expect(bob_panel.locator(".poll-state")).to_contain_text("Closed")
        await ada.screenshot(path=str(ARTIFACTS / "collab-polls.png"))

        # Whiteboard: Bob draws with the mouse; Ada's board shows it.
        await _open(ada, "Board")
        await _open(bob, "Board")
        await _inked(ada, lambda n: n == 0)
        canvas = bob.locator("#whiteboard-panel canvas")
        box = await canvas.bounding_box()
        assert box is not None
        await bob.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.3)
        await bob.mouse.down()
        for i in range(1, 21):
            await bob.mouse.move(
                box["x"] + box["width"] * (0.2 + i * 0.03), box["y"] + box["height"] * 0.5
            )
        await bob.mouse.up()
        await _inked(ada, lambda n: n > 200)
        await ada.screenshot(path=str(ARTIFACTS / "collab-whiteboard.png"))
        # The colour swatches are a radio group driven by the arrow keys.
        red = bob.get_by_role("radio", name="Red")
        await red.focus()
        await bob.keyboard.press("ArrowRight")
        blue = bob.get_by_role("radio", name="Blue")
        await expect(blue).to_be_focused()
        await expect(blue).to_have_attribute("aria-checked", "true")
        await expect(red).to_have_attribute("aria-checked", "false")
        # The host clears it for everyone.
        await ada.locator("#whiteboard-panel").get_by_role("button", name="Clear board").click()
        await _inked(bob, lambda n: n == 0)
        await expect(
            bob.locator("#whiteboard-panel").get_by_role("button", name="Clear board")
        ).to_be_hidden()

        # Q&A: Bob asks, Ada upvotes and answers.
        await _open(bob, "Q&A")
        await bob.locator("#qa-panel").get_by_label("Your question").fill("Is there a recording?")
        await bob.locator("#qa-panel").get_by_role("button", name="Ask").click()
        await _open(ada, "Q&A")
        qa = ada.locator("#qa-panel")
        await expect(qa.locator(".qa-item")).to_have_count(1)
        upvote = qa.locator(".qa-upvote")
        await upvote.click()
        await expect(upvote).to_have_attribute("aria-pressed", "true")
        await expect(bob.locator("#qa-panel .qa-upvote")).to_have_text("▲ 1")
        await expect(bob.locator("#qa-panel .qa-upvote")).to_be_disabled()  # own question
        await qa.get_by_role("button", name="Answer").click()
        await qa.get_by_label("Answer (optional)").fill("Yes, on the summary page")
        await qa.get_by_role("button", name="Mark answered").click()
        await expect(bob.locator("#qa-panel")).to_contain_text("Answer: Yes, on the summary page")

        violations = await _axe(ada)
        assert violations == [], violations
        assert errors == [], errors
    finally:
        await ada_ctx.close()
        await bob_ctx.close()
        await host_api.close()


async def test_a_late_joiner_sees_polls_questions_and_the_board(
    twin: Twin, browser: Browser
) -> None:
    from tests.integration.client import SignalingClient

    host_api = Api(twin.base_url)
    await host_api.sign_up(f"late-{uuid.uuid4().hex[:6]}@example.com", name="Ada")
    info = await host_api.create_meeting(title="Late review")
    host = await SignalingClient.enter(twin.ws_url, await host_api.join(info["meeting_id"], "Ada"))
    await host.ok("join")
    await host.ok("poll_create", {"question": "Earlier poll?", "options": ["a", "b"]})
    await host.ok("qa_ask", {"text": "An earlier question"})
    points = [[0.1 + i / 100, 0.5] for i in range(50)]
    await host.ok("wb_stroke", {"color": "#e53935", "width": 8, "points": points})
    errors: list[str] = []
    context = await _context(browser, errors)
    try:
        page = await _page(context, errors)
        await _join(page, info["join_url"], "Cy")
        await _open(page, "Polls")
        await expect(page.locator("#polls-panel")).to_contain_text("Earlier poll?")
        await _open(page, "Q&A")
        await expect(page.locator("#qa-panel")).to_contain_text("An earlier question")
        await _open(page, "Board")
        await _inked(page, lambda n: n > 100)
        assert errors == [], errors
    finally:
        await context.close()
        await host.close()
        await host_api.close()


async def test_summary_page_for_the_host(twin: Twin, browser: Browser) -> None:
    from tests.integration.client import SignalingClient

    host_api = Api(twin.base_url)
    session = await host_api.sign_up(f"sum-{uuid.uuid4().hex[:6]}@example.com", name="Ada")
    mid = (await host_api.create_meeting(title="Board meeting"))["meeting_id"]
    host = await SignalingClient.enter(twin.ws_url, await host_api.join(mid, "Ada"))
    await host.ok("join")
    guest = await SignalingClient.enter(
        twin.ws_url, await Api(twin.base_url).join(mid, '=Bob, "the builder"')
    )
    await guest.ok("join")
    await host.ok("chat", {"text": "Hello, world"})
    await guest.ok("chat", {"text": "@everyone hi"})
    poll_id = (await host.ok("poll_create", {"question": "Lunch?", "options": ["Yes", "No"]}))[
        "poll_id"
    ]
    await guest.ok("poll_vote", {"poll_id": poll_id, "choices": [1]})
    await host.ok("end")
    await guest.close()
    await host.close()

    errors: list[str] = []
    context = await _context(browser, errors, session["refresh_token"])
    try:
        page = await _page(context, errors)
        await page.goto(f"{twin.base_url}/summary.html?m={mid}")
        await expect(page.get_by_role("heading", level=1)).to_contain_text("Board meeting")
        attendance = page.locator("#attendance table")
        await expect(attendance.locator("tbody tr")).to_have_count(2)
        await expect(attendance).to_contain_text('=Bob, "the builder"')
        await expect(page.locator("#chat")).to_contain_text("Hello, world")
        await expect(page.locator("#chat")).to_contain_text("@everyone hi")
        await expect(page.locator("#polls")).to_contain_text("Lunch?")
        await expect(page.locator("#polls")).to_contain_text("1 vote, 100%")

        # Downloads carry the bearer (a bare link would get 401).
        async with page.expect_download() as info:
            await page.get_by_role("button", name="Download chat (CSV)").click()
        download = await info.value
        text = open(await download.path(), encoding="utf-8").read()  # noqa: SIM115, ASYNC230
        rows = list(csv.reader(io.StringIO(text)))
        assert [r[1:] for r in rows] == [
            ["from_name", "text"],
            ["Ada", "Hello, world"],
            ['\'=Bob, "the builder"', "'@everyone hi"],
        ]
        assert download.suggested_filename == f"townhall-{mid}-chat.csv"
        async with page.expect_download() as info:
            await page.get_by_role("button", name="Download all (JSON)").click()
        assert (await info.value).suggested_filename == f"townhall-{mid}-summary.json"

        await page.screenshot(path=str(ARTIFACTS / "summary.png"), full_page=True)
        violations = await _axe(page)
        assert violations == [], violations
        assert errors == [], errors

        # Someone else's browser, signed in as another account, gets no summary.
        other = Api(twin.base_url)
        other_session = await other.sign_up(f"o-{uuid.uuid4().hex[:6]}@example.com")
        other_context = await _context(browser, errors, other_session["refresh_token"])
        other_page = await _page(other_context, errors)
        await other_page.goto(f"{twin.base_url}/summary.html?m={mid}")
        await expect(other_page.locator("#status")).to_contain_text("not found", ignore_case=True)
        await expect(other_page.locator("#attendance table")).to_have_count(0)
        await other_context.close()
        await other.close()
    finally:
        await context.close()
        await host_api.close()
