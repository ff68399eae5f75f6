"""The meeting room in real Chromium (fake camera, microphone and screen) through the twin
and one SFU node: three people see each other, and everything a meeting needs works between
their pages: mute, chat (public and private), hands, reactions, a poll, the waiting room, a
screen share, a dropped WebSocket, and the accessibility scan.

One twin, one browser and one three-person meeting serve the whole module (the fixtures are
module-scoped), because each page costs a real encoder and decoder on a 2-core machine.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, expect
from playwright.async_api import TimeoutError as PlaywrightTimeout

from infra.twin.server import TwinOptions
from tests.integration.browser import ARTIFACTS, axe_violations
from tests.integration.client import Api
from tests.integration.conftest import Twin, _start
from tests.integration.room_pages import (
    STAGE,
    Person,
    close_panels,
    join,
    new_person,
    open_panel,
    sees_remote_video,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Meeting:
    twin: Twin
    host_api: Api
    info: dict[str, Any]
    browser: Browser
    people: dict[str, Person]


@pytest.fixture(scope="module")
def media_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    yield from _start(tmp_path_factory, TwinOptions(media_nodes=1))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def meeting(media_twin: Twin, room_browser: Browser) -> AsyncIterator[Meeting]:
    browser = room_browser
    host_api = Api(media_twin.base_url)
    session = await host_api.sign_up(f"room-{uuid.uuid4().hex[:6]}@example.com", name="Ada")
    info = await host_api.create_meeting(title="Design review")
    ada = await new_person(browser, "Ada", refresh_token=session["refresh_token"])
    bob = await new_person(browser, "Bob")
    cy = await new_person(browser, "Cy", csp=False)  # the one the axe scan runs on
    # Three pages encode and decode video on two shared cores: give each UI change more time
    # than Playwright's 5 s (restored below).
    expect.set_options(timeout=15_000)
    try:
        for person in (ada, bob, cy):
            await join(person, info["join_url"])
        yield Meeting(media_twin, host_api, info, browser, {"ada": ada, "bob": bob, "cy": cy})
        for person in (ada, bob, cy):
            assert person.errors == [], person.errors
    finally:
        expect.set_options(timeout=5_000)
        for person in (ada, bob, cy):
            await person.context.close()
        await host_api.close()


async def test_three_pages_see_the_other_two(meeting: Meeting) -> None:
    people = meeting.people
    ids = {key: await p.participant_id() for key, p in people.items()}
    for key, person in people.items():
        videos = await sees_remote_video(person.page, 2)
        others = {ids[k] for k in people if k != key}
        assert {v["participant"] for v in videos} == others, (key, videos)
        await expect(person.page.locator("#stage .tile")).to_have_count(3)
    # The signed-in host joined as host: the host tools are there for Ada only.
    await open_panel(people["ada"].page, "people")
    await expect(people["ada"].page.get_by_role("button", name="Mute all")).to_be_visible()
    # The drawer's close button shows an icon (and is named, for the people who cannot see it).
    close = people["ada"].page.get_by_role("button", name="Close panels")
    box = await close.locator("svg").bounding_box()
    assert box and box["width"] >= 16 and box["height"] >= 16, box
    await open_panel(people["bob"].page, "people")
    await expect(people["bob"].page.locator("#host-tools")).to_be_hidden()
    for person in people.values():
        await close_panels(person.page)
    await people["ada"].page.wait_for_timeout(2500)  # one quality sample on every tile
    await people["ada"].page.screenshot(path=str(ARTIFACTS / "room.png"))


async def test_mute_shows_on_the_other_pages(meeting: Meeting) -> None:
    ada, bob, cy = (meeting.people[k] for k in ("ada", "bob", "cy"))
    bob_id = await bob.participant_id()
    mic = bob.page.locator("#mic-button")
    await expect(mic).to_have_text("Mute")
    # The host mutes everyone: the others see who did it in a notice, which takes no focus,
    # can be dismissed and goes by itself; their microphone buttons now offer "Unmute", and
    # their tiles show them muted.
    await bob.page.locator("#chat-button").focus()
    await open_panel(ada.page, "people")
    await ada.page.get_by_role("button", name="Mute all").click()
    for page in (bob.page, cy.page):
        notice = page.locator("#notices .notice", has_text="Ada muted everyone.")
        await expect(notice).to_be_visible()
        await expect(page.locator("#mic-button")).to_have_text("Unmute")  # what a click does now
        await expect(page.locator("#mic-button")).to_have_attribute("aria-pressed", "true")
        await expect(page.locator("#announcer")).to_contain_text("Ada muted everyone.")
    await expect(ada.page.locator("#notices")).to_contain_text("You muted everyone.")
    await expect(bob.page.locator("#chat-button")).to_be_focused()  # not taken by the notice
    await bob.page.screenshot(path=str(ARTIFACTS / "room-notice.png"))
    violations = await axe_violations(cy.page)  # Cy's page, with the notice showing
    assert violations == [], violations
    await bob.page.locator("#notices").get_by_role("button", name="Dismiss").click()
    await expect(bob.page.locator("#notices .notice")).to_have_count(0)
    for key in ("ada", "cy"):
        tile = meeting.people[key].page.locator(f'#stage .tile[data-participant="{bob_id}"]')
        await expect(tile.locator(".tile-mic")).to_be_visible()
        await expect(tile).to_have_attribute("aria-label", "Bob, muted")

    # M unmutes, and mutes again.
    await bob.page.locator("#stage").click()  # focus on the page, not in an input
    await bob.page.keyboard.press("m")
    await expect(mic).to_have_attribute("aria-pressed", "false")
    await expect(mic).to_have_text("Mute")
    tile = ada.page.locator(f'#stage .tile[data-participant="{bob_id}"]')
    await expect(tile.locator(".tile-mic")).to_be_hidden()
    await bob.page.keyboard.press("m")
    await expect(mic).to_have_attribute("aria-pressed", "true")
    await expect(mic).to_have_text("Unmute")
    await expect(mic).to_have_attribute("title", "Unmute (M)")
    await expect(tile).to_have_attribute("aria-label", "Bob, muted")
    # Typing an "m" in the chat box is text, not a shortcut.
    await open_panel(bob.page, "chat")
    await bob.page.locator("#text").type("m")
    await expect(mic).to_have_attribute("aria-pressed", "true")
    await bob.page.locator("#text").fill("")
    for page in (bob.page, cy.page):
        await page.get_by_role("button", name="Unmute", exact=True).click()
        await expect(page.locator("#mic-button")).to_have_attribute("aria-pressed", "false")
        await expect(page.locator("#mic-button")).to_have_text("Mute")
    await expect(tile.locator(".tile-mic")).to_be_hidden()
    await expect(cy.page.locator("#notices .notice")).to_have_count(0)  # gone by itself


async def test_chat_private_message_and_hand(meeting: Meeting) -> None:
    ada, bob, cy = (meeting.people[k] for k in ("ada", "bob", "cy"))
    # Chat to everyone: an unread count on a closed panel, the message on every page.
    await close_panels(cy.page)
    await close_panels(ada.page)
    await open_panel(bob.page, "chat")
    await bob.page.fill("#text", "hello from Bob")
    await bob.page.keyboard.press("Enter")
    await expect(cy.page.locator("#chat-badge")).to_have_text("1")
    await expect(cy.page.locator("#announcer")).to_contain_text("Message from Bob: hello from Bob")
    await cy.page.get_by_role("button", name="Chat, 1 unread").click()
    await expect(cy.page.locator("#chat")).to_contain_text("hello from Bob")
    await expect(cy.page.locator("#chat-badge")).to_be_hidden()
    # Private: Bob to Ada only.
    await bob.page.select_option("#chat-to", label="Ada (private)")
    await bob.page.fill("#text", "just between us")
    await bob.page.get_by_role("button", name="Send").click()
    await expect(bob.page.locator("#chat")).to_contain_text("privately to Ada")
    await expect(ada.page.locator("#chat-badge")).to_have_text("2")
    await ada.page.get_by_role("button", name="Chat, 2 unread").click()
    await expect(ada.page.locator("#chat .chat-message.private")).to_contain_text("just between us")
    await expect(cy.page.locator("#chat")).to_contain_text("hello from Bob")
    await cy.page.wait_for_timeout(500)
    await expect(cy.page.locator("#chat")).not_to_contain_text("just between us")

    # Hands: Cy then Bob raise; the host sees them first-raised-first and lowers Cy's.
    await cy.page.get_by_role("button", name="Raise hand").click()
    await expect(cy.page.locator("#hand-button")).to_have_attribute("aria-pressed", "true")
    await expect(cy.page.locator("#hand-button")).to_have_text("Lower hand")
    await bob.page.locator("#stage").click()
    await bob.page.keyboard.press("h")
    await open_panel(ada.page, "people")
    hands = ada.page.locator("#hands-list li")
    await expect(hands).to_have_count(2)
    await expect(hands.nth(0)).to_contain_text("Cy")
    await expect(hands.nth(1)).to_contain_text("Bob")
    await ada.page.get_by_role("button", name="Lower Cy's hand").click()
    await expect(cy.page.locator("#hand-button")).to_have_attribute("aria-pressed", "false")
    await expect(cy.page.locator("#hand-button")).to_have_text("Raise hand")
    await expect(hands).to_have_count(1)
    await bob.page.get_by_role("button", name="Lower hand").click()
    await expect(hands).to_have_count(0)

    # A reaction floats on every page.
    await cy.page.get_by_role("button", name="React").click()
    await cy.page.get_by_role("button", name="React 🎉").click()
    await expect(ada.page.locator("#reactions-layer .reaction")).to_contain_text("🎉")


async def _wait_featured(page: Any, participant: str, what: str) -> None:
    try:
        await page.wait_for_function(
            "id => { const t = document.querySelector('#stage .tile.featured');"
            " return t && t.dataset.participant === id; }",
            arg=participant,
            timeout=20_000,
        )
    except PlaywrightTimeout:
        raise AssertionError(f"{what}: stage {await page.evaluate(STAGE)}") from None


async def test_speaker_view(meeting: Meeting) -> None:
    """Speaker view follows who speaks (the node's active speaker, from the audio levels), and
    never features a muted guest with the camera off while someone else has video."""
    people = meeting.people
    ada, bob, cy = (people[k].page for k in ("ada", "bob", "cy"))
    ids = {key: await p.participant_id() for key, p in people.items()}
    await close_panels(ada)
    await ada.get_by_role("button", name="Speaker view").click()
    await expect(ada.locator("#layout-button")).to_have_attribute("aria-pressed", "true")
    await expect(ada.locator("#layout-button")).to_have_text("Grid view")
    await expect(ada.locator("#stage")).to_have_attribute("data-layout", "featured")
    featured = ada.locator("#stage .tile.featured")
    await expect(featured).to_have_count(1)
    await expect(featured).not_to_have_class(re.compile(r"\bself\b"))

    # Only Cy's microphone is on (Chromium's fake one beeps): the big tile goes to Cy.
    for page in (ada, bob):
        await page.locator("#stage").click()
        await page.keyboard.press("m")
        await expect(page.locator("#mic-button")).to_have_attribute("aria-pressed", "true")
    await _wait_featured(ada, ids["cy"], "Cy, the only one heard, featured")
    # Cy mutes and stops the camera, and nobody speaks: Bob, whose video is there, takes the
    # big tile from the last speaker (the node's speaker slot still names Cy).
    await cy.get_by_role("button", name="Stop video").click()
    await expect(cy.locator("#camera-button")).to_have_text("Start video")
    await expect(cy.locator("#camera-button")).to_have_attribute("aria-pressed", "true")
    await cy.get_by_role("button", name="Mute", exact=True).click()
    await _wait_featured(ada, ids["bob"], "Bob, seen, featured over a silent Cy without video")
    # Bob speaks: the node names him the speaker, and he keeps the big tile.
    await bob.get_by_role("button", name="Unmute", exact=True).click()
    await expect(
        ada.locator(f'#stage .tile.speaking[data-participant="{ids["bob"]}"]')
    ).to_have_count(1)
    assert await featured.get_attribute("data-participant") == ids["bob"]
    await ada.wait_for_function(
        "() => { const v = document.querySelector('#stage .tile.featured video');"
        " return v && v.videoWidth > 0; }",
        timeout=10_000,
    )
    await ada.screenshot(path=str(ARTIFACTS / "room-speaker.png"))
    # Back as they were: Cy's camera and microphone on, Ada unmuted, the grid.
    await cy.get_by_role("button", name="Start video").click()
    await expect(cy.locator("#camera-button")).to_have_text("Stop video")
    await cy.get_by_role("button", name="Unmute", exact=True).click()
    await ada.get_by_role("button", name="Unmute", exact=True).click()
    await ada.get_by_role("button", name="Grid view").click()
    await expect(ada.locator("#stage")).to_have_attribute("data-layout", "grid")
    await expect(ada.locator("#layout-button")).to_have_text("Speaker view")


async def test_screen_share_appears_on_the_other_pages(meeting: Meeting) -> None:
    bob = meeting.people["bob"]
    bob_id = await bob.participant_id()
    await bob.page.get_by_role("button", name="Share screen").click()
    await expect(bob.page.locator("#share-button")).to_have_attribute("aria-pressed", "true")
    await expect(bob.page.locator("#share-button")).to_have_text("Stop sharing")
    for key in ("ada", "cy"):
        page = meeting.people[key].page
        screen = page.locator('#stage .tile[data-screen="true"]')
        await expect(screen).to_have_attribute("data-participant", bob_id, timeout=20_000)
        await expect(screen).to_have_class(re.compile(r"\bfeatured\b"))
        await expect(screen).to_have_attribute("aria-label", "Bob's screen")
        videos = await sees_remote_video(page, 1, screen=True)
        assert videos[0]["w"] >= 640, videos  # the fake screen, not a camera thumbnail
    # Bob's camera still reaches the others after the re-publish.
    await sees_remote_video(meeting.people["cy"].page, 2)
    await bob.page.get_by_role("button", name="Stop sharing").click()
    await expect(bob.page.locator("#share-button")).to_have_attribute("aria-pressed", "false")
    await expect(bob.page.locator("#share-button")).to_have_text("Share screen")
    for key in ("ada", "cy"):
        page = meeting.people[key].page
        await expect(page.locator('#stage .tile[data-screen="true"]')).to_have_count(
            0, timeout=15_000
        )


async def test_poll_round_trip(meeting: Meeting) -> None:
    ada, bob = meeting.people["ada"].page, meeting.people["bob"].page
    if await ada.locator("#tab-polls").get_attribute("hidden") is not None:
        log = meeting.people["ada"].console
        pytest.fail(f"the polls panel (web/collab/polls.js) did not mount: {log}")
    await close_panels(bob)
    await open_panel(ada, "polls")
    panel = ada.locator("#polls-panel")
    # The collab panel's own form: a question and two options, then start it.
    await panel.get_by_label("Question").fill("Ship on Friday?")
    await panel.get_by_label("Option 1").fill("Yes")
    await panel.get_by_label("Option 2").fill("No")
    await panel.get_by_role("button", name="Start poll").click()
    await expect(bob.locator("#apps-badge")).to_have_text("1")
    await bob.get_by_role("button", name="Activities, 1 new").click()
    await bob.get_by_role("tab", name="Polls").click()
    await bob.locator("#polls-panel").get_by_label("Yes").check()
    await bob.locator("#polls-panel").get_by_role("button", name="Vote").click()
    await expect(ada.locator("#polls-panel")).to_contain_text("1 vote")


async def test_waiting_room_admits_a_guest(meeting: Meeting) -> None:
    info = await meeting.host_api.create_meeting(title="Interviews", waiting_room=True)
    ada = meeting.people["ada"]
    host = await ada.context.new_page()  # the same signed-in browser
    host_person = Person("Ada", ada.context, host)
    guest = await new_person(meeting.browser, "Dee")
    try:
        await join(host_person, info["join_url"])
        await join(guest, info["join_url"], admitted=False)
        await expect(guest.page.locator("#waiting")).to_be_visible()
        await expect(guest.page.get_by_role("heading", name="Waiting to be let in")).to_be_visible()
        await expect(host.locator("#people-badge")).to_have_text("1")
        # A notice names the guest, with Admit, Deny and View right there, and takes no focus.
        notice = host.locator("#notices .notice", has_text="Dee is waiting to join.")
        await expect(notice).to_be_visible()
        await expect(notice.get_by_role("button", name="Deny Dee")).to_be_visible()
        await expect(notice.get_by_role("button", name="View the waiting room")).to_be_visible()
        assert await host.evaluate("() => !document.activeElement.closest('#notices')")
        await host.screenshot(path=str(ARTIFACTS / "room-waiting-notice.png"))
        await notice.get_by_role("button", name="Admit Dee").click()
        await expect(guest.page.locator("#room")).to_be_visible(timeout=10_000)
        await expect(guest.page.locator("#waiting")).to_be_hidden()
        await expect(host.locator("#people-badge")).to_be_hidden()
        await expect(notice).to_have_count(0)
        await host.get_by_role("button", name="People").click()
        await expect(host.locator("#people .person")).to_have_count(2)
        await expect(guest.page.locator("#stage .tile")).to_have_count(2)
        assert guest.errors == [], guest.errors
    finally:
        await guest.context.close()
        await host.close()


async def test_a_killed_websocket_reconnects_without_a_reload(meeting: Meeting) -> None:
    ada, cy = meeting.people["ada"], meeting.people["cy"]
    await ada.page.evaluate("() => { window.notReloaded = true; }")
    ada_id = await ada.participant_id()
    meeting_id = meeting.info["meeting_id"]
    before = meeting.twin.connection_of(meeting_id, ada_id)
    assert before
    # As API Gateway does at the idle timeout or the 2-hour cap: the server closes it.
    await asyncio.to_thread(
        meeting.twin.local.management_client().delete_connection, ConnectionId=before
    )
    await expect(ada.page.locator("#banner")).to_contain_text("Reconnected", timeout=15_000)
    assert await ada.page.evaluate("() => window.notReloaded === true")
    after = meeting.twin.connection_of(meeting_id, ada_id)
    assert after and after != before
    # Same role and place: still the host, still first.
    await open_panel(ada.page, "people")
    await expect(ada.page.get_by_role("button", name="End for all")).to_be_visible()
    await expect(ada.page.locator("#people .person").first).to_contain_text("Ada (you)")
    await expect(ada.page.locator("#people .person .role").first).to_have_text("Host")
    # Chat still works both ways.
    await open_panel(ada.page, "chat")
    await ada.page.fill("#text", "back again")
    await ada.page.keyboard.press("Enter")
    await expect(cy.page.locator("#chat")).to_contain_text("back again")
    await open_panel(cy.page, "chat")
    await cy.page.fill("#text", "welcome back")
    await cy.page.keyboard.press("Enter")
    await expect(ada.page.locator("#chat")).to_contain_text("welcome back")
    # And Cy's socket dropping on the client side (a network change): the page notices and
    # rejoins. The test keeps a handle on the page's sockets (see new_person).
    await cy.page.evaluate("() => { window.notReloaded = true; }")
    await cy.page.evaluate("() => window.testSockets.at(-1).close(4000, 'test drop')")
    await expect(cy.page.locator("#banner")).to_contain_text("Reconnected", timeout=20_000)
    assert await cy.page.evaluate("() => window.notReloaded === true")
    await open_panel(ada.page, "chat")
    await cy.page.fill("#text", "still here")
    await cy.page.keyboard.press("Enter")
    await expect(ada.page.locator("#chat")).to_contain_text("still here")
    await sees_remote_video(cy.page, 2)


async def test_room_has_no_serious_accessibility_violations(meeting: Meeting) -> None:
    page = meeting.people["cy"].page
    await open_panel(page, "people")
    violations = await axe_violations(page)
    assert violations == [], violations


async def test_join_page_screenshot_and_accessibility(meeting: Meeting) -> None:
    person = await new_person(meeting.browser, "Eve", csp=False)
    try:
        await person.page.goto(meeting.info["join_url"])
        await expect(person.page.locator("#title")).to_have_text("Design review")
        await person.page.fill("#name", "Eve")
        await person.page.wait_for_function(
            "() => { const v = document.querySelector('#prejoin video');"
            " return v && v.videoWidth > 0; }",
            timeout=10_000,
        )
        await person.page.screenshot(path=str(ARTIFACTS / "join.png"))
        violations = await axe_violations(person.page)
        assert violations == [], violations
        assert person.errors == [], person.errors
    finally:
        await person.context.close()
