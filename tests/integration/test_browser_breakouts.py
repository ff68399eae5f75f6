"""Breakout rooms in real Chromium (fake camera and microphone) through the twin and one SFU
node: a host sets up two rooms by hand and opens them with a short countdown; the two guests'
pages count down and move themselves into their room without a reload; their media flows
between them and nobody else; their chat stays in the room; one asks for help, the host sees
the notice and joins the room from it; the host closes the rooms at once and every page is
back in the main room with media. Then the summary page says who was in which room.

One three-person meeting, in one test: each page costs a real encoder and decoder on a 2-core
machine, and the walk is one story.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable, Iterator

import pytest
from playwright.async_api import Browser, Frame, Page, expect

from infra.twin.server import TwinOptions
from tests.integration.browser import ARTIFACTS, axe_violations
from tests.integration.client import Api
from tests.integration.conftest import Twin, _start
from tests.integration.room_pages import (
    Person,
    close_panels,
    join,
    new_person,
    open_panel,
    sees_remote_video,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Set once on each page: still there at the end means the page never reloaded.
MARK = "window.breakoutMark = 'still the same page'"
MARKED = "() => window.breakoutMark === 'still the same page'"
# Every text the breakout bar shows, in order: a countdown of 2 s can be over before a busy
# machine's test looks.
BAR_LOG = (
    "window.barLog = [];"
    "document.addEventListener('DOMContentLoaded', () => {"
    " const room = document.getElementById('room'); if (!room) return;"
    " new MutationObserver(() => { const bar = document.getElementById('breakout-bar');"
    "  if (!bar || bar.hidden) return; const text = bar.textContent.replace(/\\d+ s/, 'N s');"
    "  if (window.barLog[window.barLog.length - 1] !== text) window.barLog.push(text); })"
    " .observe(room, {childList: true, characterData: true, subtree: true, attributes: true,"
    "  attributeFilter: ['hidden']}); });"
)


@pytest.fixture(scope="module")
def media_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    yield from _start(tmp_path_factory, TwinOptions(media_nodes=1))


def _counter(counts: dict[str, int], name: str) -> Callable[[Frame], None]:
    """Counts the page's own navigations (a reload would be one)."""

    def count(frame: Frame) -> None:
        if frame.parent_frame is None:
            counts[name] += 1

    return count


async def _tiles(page: Page) -> list[str]:
    found: list[str] = await page.locator("#stage .tile").evaluate_all(
        "tiles => tiles.map(t => t.dataset.participant)"
    )
    return found


async def test_breakout_rooms_walk(media_twin: Twin, room_browser: Browser) -> None:
    host_api = Api(media_twin.base_url)
    session = await host_api.sign_up(f"bo-{uuid.uuid4().hex[:6]}@example.com", name="Ada")
    info = await host_api.create_meeting(title="Workshop")
    ada = await new_person(room_browser, "Ada", refresh_token=session["refresh_token"])
    bob = await new_person(room_browser, "Bob")
    for person in (ada, bob):
        await person.context.add_init_script(BAR_LOG)
    cy = await new_person(room_browser, "Cy")
    people: tuple[Person, ...] = (ada, bob, cy)
    navigations = {p.name: 0 for p in people}
    expect.set_options(timeout=15_000)
    try:
        await join(ada, info["join_url"])  # the host starts the meeting
        await asyncio.gather(join(bob, info["join_url"]), join(cy, info["join_url"]))
        for person in people:
            await person.page.evaluate(MARK)
            person.page.on("framenavigated", _counter(navigations, person.name))
        bob_id, cy_id = await bob.participant_id(), await cy.participant_id()

        # The host sets up two rooms by hand: both guests in Room 1.
        page = ada.page
        await page.locator("#breakouts-button").click()
        panel = page.locator("#breakouts-panel")
        await expect(panel.get_by_label("Number of rooms")).to_have_value("2")
        await expect(panel.get_by_label("Name of room 2")).to_have_value("Room 2")
        await panel.get_by_role("button", name="Create rooms").click()
        for name in ("Bob", "Cy"):
            await panel.get_by_label(name, exact=True).select_option(label="Room 1")
        await expect(panel.locator(".bo-overview")).to_contain_text(
            re.compile(r"Room 1 \(2\): (Bob, Cy|Cy, Bob)")
        )
        await panel.get_by_label("Countdown (seconds)").fill("2")
        await page.screenshot(path=str(ARTIFACTS / "breakouts-panel.png"))
        await panel.get_by_role("button", name="Open rooms").click()

        # Everyone sees the countdown; the guests' pages then move by themselves.
        await bob.page.wait_for_function("() => window.barLog.length > 0")
        await bob.page.screenshot(path=str(ARTIFACTS / "breakouts-countdown.png"))
        for guest in (bob, cy):
            await expect(guest.page.locator("#breakout-bar")).to_contain_text("You're in Room 1")
        # The host's page has the countdown from the reply; a guest's from the event, which a
        # busy machine may deliver after the 2 s (then the page goes straight in).
        assert (await page.evaluate("() => window.barLog"))[0] == (
            "Breakout rooms open in N s — you stay in the main room and can visit any room"
        )
        shown = await bob.page.evaluate("() => window.barLog")
        countdown = ["Breakout rooms open in N s — you're going to Room 1"]
        assert shown[-2:] == [
            "Going to Room 1…",
            "Room 1You're in Room 1Ask for helpReturn to main room",
        ] and shown[:-2] in ([], countdown), shown
        # The people in Room 1 see and hear each other; the host, alone in the main room,
        # sees nobody.
        await _media_settled(bob.page)
        await _media_settled(cy.page)
        seen = await asyncio.gather(sees_remote_video(bob.page, 1), sees_remote_video(cy.page, 1))
        assert [[v["participant"] for v in videos] for videos in seen] == [[cy_id], [bob_id]], seen
        await expect(page.locator("#stage .tile")).to_have_count(1)
        # The roster shows everyone, by room.
        await open_panel(bob.page, "people")
        group = bob.page.locator('#people .people-group[data-room]:not([data-room="main"])')
        await expect(group).to_contain_text("Room 1")
        await close_panels(bob.page)
        await bob.page.screenshot(path=str(ARTIFACTS / "breakouts-in-room.png"))

        # Chat in Room 1 stays there: the host's own message after it is the barrier.
        await open_panel(bob.page, "chat")
        await bob.page.fill("#text", "hello from room 1")
        await bob.page.keyboard.press("Enter")
        await open_panel(cy.page, "chat")
        await expect(cy.page.locator("#chat")).to_contain_text("hello from room 1")
        await open_panel(page, "chat")
        await page.fill("#text", "main room only")
        await page.keyboard.press("Enter")
        await expect(page.locator("#chat .chat-message:not(.pending)")).to_contain_text(
            ["main room only"]
        )
        await expect(page.locator("#chat")).not_to_contain_text("hello from room 1")
        await expect(bob.page.locator("#chat")).not_to_contain_text("main room only")

        # A guest asks for help; the host sees who and where, and joins the room from there.
        await bob.page.get_by_role("button", name="Ask for help").click()
        notice = page.locator("#breakout-notices .bo-notice-help")
        await expect(notice).to_contain_text("Bob asks for help in Room 1.")
        await page.screenshot(path=str(ARTIFACTS / "breakouts-help.png"))
        await notice.get_by_role("button", name="Join Room 1 to help Bob").click()
        await expect(page.locator("#breakout-bar")).to_contain_text("You're visiting Room 1")
        await expect(page.locator("#chat")).to_contain_text("hello from room 1")
        await expect(page.locator("#chat")).not_to_contain_text("main room only")
        await _media_settled(page)
        await sees_remote_video(page, 2)
        assert sorted(await _tiles(page)) == sorted([bob_id, cy_id, await ada.participant_id()])
        # The accessibility scan: the host's panel with the rooms open, and the bar of a room.
        await open_panel(page, "breakouts")
        await page.screenshot(path=str(ARTIFACTS / "breakouts-panel-open.png"))
        violations = await axe_violations(page)
        assert violations == [], violations

        # Closed at once: every page is back in the main room, with everyone's media.
        await panel.get_by_role("button", name="Close now").click()
        for person in people:
            await expect(person.page.locator("#breakout-bar")).to_be_hidden()
            await _media_settled(person.page)
        await asyncio.gather(*(sees_remote_video(person.page, 2) for person in people))
        for person in people:
            assert await person.page.evaluate(MARKED), f"{person.name}'s page reloaded"
        await expect(bob.page.locator("#chat")).to_contain_text("main room only")
        assert navigations == {p.name: 0 for p in people}, navigations
        for person in people:
            assert person.errors == [], (person.name, person.errors)

        # The summary says who was where, and the room of each chat line.
        await page.goto(f"{media_twin.base_url}/summary.html?m={info['meeting_id']}")
        rooms = page.locator("#breakouts")
        await expect(rooms).to_contain_text("Room 1 · 3 people")
        await expect(page.locator("#chat .summary-room-tag")).to_have_text(["Room 1"])
        await expect(
            page.get_by_role("button", name="Download breakout rooms (CSV)")
        ).to_be_visible()
        await page.screenshot(path=str(ARTIFACTS / "breakouts-summary.png"), full_page=True)
    finally:
        expect.set_options(timeout=5_000)
        for person in people:
            await person.context.close()
        await host_api.close()


async def _media_settled(page: Page) -> None:
    """A move renegotiates media: wait for it to end, so the videos checked next are the new
    room's, not the last frames of the old one's."""
    await expect(page.locator("#room")).not_to_have_attribute("data-media-switching", "true")
