"""A meeting's life in real Chromium against the twin (issue 10, "Meeting lifecycle and
identity"): a meeting is a series of sessions, people are who they are across joins, and a
webinar keeps its audience watching.

- a guest who comes before the host waits in the lobby and is let in when the host starts; the
  signed-in host is asked for neither name nor passcode and presses "Start";
- "End for all" ends the session of a weekly meeting; the host starts it again from the same
  link and the guest's page joins the new session;
- a one-off tried out today still works tomorrow (the twin's clock and the pages' clocks moved);
- a removed guest is refused on every path (the link again, a new tab, /rejoin with the old
  resume token, the old join token on the WebSocket), so is a removed account in another
  browser, while "remove, let back in later" sends them to the waiting room;
- the host leaves handing the host role to someone they pick (the co-host is the default); a
  guest who left rejoins through the normal join without the passcode;
- a dropped participant is shown reconnecting on the same tile until the window passes;
- a webinar with two attendees and one panelist: no attendee tiles, attendees do not see each
  other, a promotion publishes the attendee's camera without a reload and a demotion stops it;
- the dashboard: "Live now", past sessions a page at a time, past one-offs, each session's
  summary with every person once and their intervals.

One twin (with one SFU node) and one browser serve the module. People who need no picture join
without devices (their getUserMedia is refused), so only the webinar's presenters encode video.
Screenshots go to test-artifacts/: lobby.png, leave-dialog.png, webinar-attendee.png,
webinar-host.png, dashboard-sessions.png and summary-session.png.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
import websockets
from playwright.async_api import Browser, Page, expect

from infra.twin.server import TwinOptions
from tests.integration.browser import ARTIFACTS, axe_violations
from tests.integration.client import Api, SignalingClient, new_guest_key
from tests.integration.conftest import Twin, _start
from tests.integration.room_pages import Person, new_person, open_panel, presents_frames

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Test instrumentation: a page that must not open devices counts its requests for them, and a
# page that needs none is refused them (no encoder running on the shared cores).
COUNT_DEVICES = """
window.deviceRequests = 0; window.deviceStreams = [];
const realGetUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = async (constraints) => {
  window.deviceRequests += 1;
  const stream = await realGetUserMedia(constraints);
  window.deviceStreams.push(stream);
  return stream;
};
"""
NO_DEVICES = (
    "navigator.mediaDevices.getUserMedia = () =>"
    " Promise.reject(new DOMException('no devices in this test', 'NotAllowedError'));"
)
# Every text the page's live region announces (one replaces the other on screen).
ANNOUNCEMENTS = """
window.announcements = [];
document.addEventListener('DOMContentLoaded', () => {
  const live = document.getElementById('announcer'); if (!live) return;
  new MutationObserver(() => { if (live.textContent) window.announcements.push(live.textContent); })
    .observe(live, {childList: true, characterData: true, subtree: true});
});
"""
LOBBY = "The host has not started this meeting yet"


@dataclass
class World:
    twin: Twin
    browser: Browser
    people: list[Person] = field(default_factory=list)
    apis: list[Api] = field(default_factory=list)

    async def host(self, name: str = "Ada") -> tuple[Api, dict[str, Any]]:
        api = Api(self.twin.base_url)
        account = await api.sign_up(f"life-{uuid.uuid4().hex[:8]}@example.com", name=name)
        self.apis.append(api)
        return api, account

    async def person(
        self, name: str, *, devices: bool = False, refresh_token: str | None = None
    ) -> Person:
        person = await new_person(self.browser, name, refresh_token=refresh_token)
        await person.context.add_init_script(COUNT_DEVICES if devices else NO_DEVICES)
        await person.context.add_init_script(ANNOUNCEMENTS)
        self.people.append(person)
        return person


@pytest.fixture(scope="module")
def lifecycle_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    yield from _start(tmp_path_factory, TwinOptions(media_nodes=1))


@pytest_asyncio.fixture(loop_scope="module")
async def world(lifecycle_twin: Twin, room_browser: Browser) -> AsyncIterator[World]:
    # Several pages on two shared cores: UI changes get more than Playwright's 5 s.
    expect.set_options(timeout=15_000)
    w = World(lifecycle_twin, room_browser)
    try:
        yield w
        for person in w.people:
            assert person.errors == [], (person.name, person.errors)
    finally:
        expect.set_options(timeout=5_000)
        for person in w.people:
            await person.context.close()
        for api in w.apis:
            await api.close()


async def open_link(person: Person, url: str, *, passcode: str | None = None) -> None:
    page = person.page
    await page.goto(url)
    await expect(page.locator("#title")).not_to_have_text("Join a meeting")
    if await page.locator("#name").is_visible():
        await page.fill("#name", person.name)
    if passcode is not None:
        await page.fill("#passcode", passcode)


async def enter(person: Person, url: str, *, passcode: str | None = None) -> dict[str, Any]:
    """Through the join page into the room; the grant the page got (its participant id)."""
    await open_link(person, url, passcode=passcode)
    page = person.page
    async with page.expect_response(
        lambda r: r.url.endswith("/join") and r.request.method == "POST" and r.status == 200
    ) as answer:
        await page.locator("#join-button").click()
    grant: dict[str, Any] = await (await answer.value).json()
    await expect(page.locator("#room")).to_be_visible()
    return grant


async def announced(page: Page, text: str) -> None:
    """The page's live region said `text` (alone or with others), at some point."""
    try:
        await page.wait_for_function(
            "text => window.announcements.some((a) => a.includes(text))", arg=text, timeout=15_000
        )
    except Exception as error:
        said = await page.evaluate("window.announcements")
        raise AssertionError(f"announced {said}, not {text!r}") from error


def tile(page: Page, participant_id: str) -> Any:
    return page.locator(f'#stage .tile[data-participant="{participant_id}"]')


async def leave_as_guest(person: Person) -> None:
    await person.page.locator("#leave-button").click()
    await expect(person.page.locator("#ended-title")).to_have_text("You left the meeting")


async def sessions(api: Api, meeting_id: str, **query: Any) -> dict[str, Any]:
    response = await api.http.get(
        f"/api/meetings/{meeting_id}/sessions", params=query, headers=api._headers()
    )
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def test_a_guest_waits_in_the_lobby_and_is_let_in_when_the_host_starts(
    world: World,
) -> None:
    api, account = await world.host()
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(hour=10, minute=0)
    info = await api.create_meeting(
        title="Lobby drill",
        passcode="2468",
        start=tomorrow.strftime("%Y-%m-%dT%H:%M"),
        timezone="UTC",
    )
    gus = await world.person("Gus")
    await open_link(gus, info["join_url"], passcode="2468")
    await gus.page.locator("#join-button").click()
    # The lobby: says so, says when, and offers a way out.
    wait = gus.page.locator("#host-wait")
    await expect(wait.get_by_role("heading", name=LOBBY)).to_be_visible()
    await expect(wait.get_by_role("heading", name=LOBBY)).to_be_focused()
    await expect(wait).to_contain_text("Scheduled for")
    await expect(gus.page.locator("#join")).to_be_hidden()
    await announced(gus.page, LOBBY)
    await gus.page.screenshot(path=str(ARTIFACTS / "lobby.png"))
    assert await axe_violations(gus.page) == []
    await wait.get_by_role("button", name="Leave the lobby").click()
    await expect(gus.page.locator("#join-button")).to_be_visible()
    await expect(gus.page.locator("#status")).to_contain_text("You left the lobby")
    await gus.page.locator("#join-button").click()
    await expect(wait).to_be_visible()

    # The host: no name, no passcode, and "Start".
    ada = await world.person("Ada", refresh_token=account["refresh_token"])
    await ada.page.goto(info["join_url"])
    await expect(ada.page.locator("#title")).to_have_text("Lobby drill")
    await expect(ada.page.locator("#name")).to_be_hidden()
    await expect(ada.page.locator("#passcode")).to_be_hidden()
    await expect(ada.page.locator("#join-button")).to_have_text("Start")
    await ada.page.locator("#join-button").click()
    await expect(ada.page.locator("#room")).to_be_visible()

    # Gus is let in by himself, the passcode he typed still good.
    await expect(gus.page.locator("#room")).to_be_visible(timeout=20_000)
    await expect(ada.page.locator("#stage .tile")).to_have_count(2)
    await expect(gus.page.locator("#stage .tile")).to_have_count(2)


async def test_end_for_all_then_the_same_link_starts_a_new_session(world: World) -> None:
    api, account = await world.host()
    info = await api.create_meeting(title="Weekly sync", rrule="FREQ=WEEKLY;BYDAY=MO")
    mid = info["meeting_id"]
    ada = await world.person("Ada", refresh_token=account["refresh_token"])
    bob = await world.person("Bob")
    await enter(ada, info["join_url"])
    first = await enter(bob, info["join_url"])

    # The host's Leave offers "End for all", and says what it does.
    await ada.page.locator("#leave-button").click()
    dialog = ada.page.locator("#confirm")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("you can start it again")
    await dialog.get_by_role("button", name="End for all").click()
    await expect(ada.page.locator("#ended-title")).to_have_text("The meeting has ended")
    await expect(bob.page.locator("#ended-title")).to_have_text("The meeting has ended")
    await expect(bob.page.locator("#return-note")).to_contain_text("If the host starts")
    await expect(bob.page.locator("#return-row")).to_be_hidden()  # no Rejoin after an end
    ended = (await sessions(api, mid))["sessions"]
    assert [s["live"] for s in ended] == [False], ended
    # The host's summary of that session, and a way to start again.
    await expect(ada.page.get_by_role("link", name="See the meeting summary")).to_have_attribute(
        "href", f"/summary.html?m={mid}&s={first['session_id']}"
    )
    await ada.page.get_by_role("button", name="Start again").click()
    await expect(ada.page.locator("#room")).to_be_visible()

    # Bob's page sees it running again and joins the new session as the same person.
    join_again = bob.page.get_by_role("button", name="Join again")
    await expect(join_again).to_be_visible(timeout=20_000)
    await announced(bob.page, "The host started the meeting again")
    await join_again.click()
    await expect(bob.page.locator("#room")).to_be_visible()
    await expect(tile(ada.page, first["participant_id"])).to_have_count(1)
    await expect(bob.page.locator("#stage .tile")).to_have_count(2)
    runs = (await sessions(api, mid))["sessions"]
    assert [s["live"] for s in runs] == [True, False], runs
    assert runs[1]["session_id"] == first["session_id"]


async def test_a_one_off_tried_out_today_still_works_tomorrow(world: World) -> None:
    api, account = await world.host()
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    start = tomorrow.replace(hour=10, minute=0, second=0, microsecond=0)
    info = await api.create_meeting(
        title="Launch review", start=start.strftime("%Y-%m-%dT%H:%M"), timezone="UTC"
    )
    ada = await world.person("Ada", refresh_token=account["refresh_token"])
    bob = await world.person("Bob")
    # Today: tried out, then ended for all.
    await enter(ada, info["join_url"])
    await enter(bob, info["join_url"])
    await ada.page.locator("#leave-button").click()
    await ada.page.locator("#confirm").get_by_role("button", name="End for all").click()
    await expect(bob.page.locator("#ended-title")).to_have_text("The meeting has ended")

    # Tomorrow, for the control plane and for the pages.
    later = time.time() + 24 * 3600
    world.twin.local.set_clock_offset(24 * 3600)
    try:
        ada_page = await ada.context.new_page()
        bob_page = await bob.context.new_page()
        for page in (ada_page, bob_page):
            await page.clock.install(time=later)
        # Still on the dashboard, with the session of yesterday.
        await ada_page.goto(f"{world.twin.base_url}/dashboard.html")
        card = ada_page.locator(f'li[data-meeting-id="{info["meeting_id"]}"]')
        await expect(card).to_be_visible()
        await card.get_by_role("button", name="Past sessions").click()
        await expect(card.locator(".sessions-list li")).to_have_count(1)
        # The same link starts it, and the guest gets in.
        tomorrow_ada = Person("Ada", ada.context, ada_page, ada.errors, ada.console)
        tomorrow_bob = Person("Bob", bob.context, bob_page, bob.errors, bob.console)
        await ada_page.goto(info["join_url"])
        await expect(ada_page.locator("#join-button")).to_have_text("Start")
        await expect(ada_page.locator("#join-button")).to_be_enabled()
        await enter(tomorrow_ada, info["join_url"])
        await enter(tomorrow_bob, info["join_url"])
        await expect(ada_page.locator("#stage .tile")).to_have_count(2)
        # (Signed in again: yesterday's access token has expired.)
        signin = await api.post(
            "/api/auth/signin", {"email": account["email"], "password": "correct horse 1"}
        )
        api.token = signin.json()["access_token"]
        assert [s["live"] for s in (await sessions(api, info["meeting_id"]))["sessions"]] == [
            True,
            False,
        ]
        await tomorrow_bob.page.locator("#leave-button").click()
        await expect(bob_page.locator("#ended-title")).to_have_text("You left the meeting")
    finally:
        world.twin.local.set_clock_offset(0)


async def test_a_removed_guest_is_refused_on_every_path(world: World) -> None:
    twin = world.twin
    api, account = await world.host()
    info = await api.create_meeting(title="Town hall", allow_before_host=False)
    mid, url = info["meeting_id"], info["join_url"]
    ada = await world.person("Ada", refresh_token=account["refresh_token"])
    await enter(ada, url)
    gus = await world.person("Gus")
    gus_grant = await enter(gus, url)
    # Eve has an account (not the host's) and joins signed in.
    eve_api = Api(twin.base_url)
    world.apis.append(eve_api)
    eve_email = f"eve-{uuid.uuid4().hex[:6]}@example.com"
    eve_account = await eve_api.sign_up(eve_email, name="Eve")
    eve = await world.person("Eve", refresh_token=eve_account["refresh_token"])
    eve_grant = await enter(eve, url)
    rae = await world.person("Rae")
    rae_grant = await enter(rae, url)
    await expect(ada.page.locator("#stage .tile")).to_have_count(4)

    async def remove(name: str, button: str) -> None:
        await open_panel(ada.page, "people")
        await ada.page.get_by_role("button", name=f"Remove {name}").click()
        dialog = ada.page.locator("#confirm")
        await expect(dialog.get_by_role("heading")).to_have_text(f"Remove {name}?")
        await dialog.get_by_role("button", name=button, exact=True).click()

    await remove("Gus", "Remove")
    await expect(gus.page.locator("#ended-title")).to_have_text("You were removed from the meeting")
    await expect(gus.page.locator("#return-row")).to_be_hidden()
    refused = "You cannot join: you were removed from this meeting."
    # The invite link again, in the same tab.
    await open_link(gus, url)
    await gus.page.locator("#join-button").click()
    await expect(gus.page.locator("#status")).to_have_text(refused)
    # A new tab of the same browser (the same guest identity).
    tab = Person("Gus", gus.context, await gus.context.new_page(), gus.errors, gus.console)
    await open_link(tab, url)
    await tab.page.locator("#join-button").click()
    await expect(tab.page.locator("#status")).to_have_text(refused)
    await expect(tab.page.locator("#room")).to_be_hidden()
    # /rejoin with the old resume token.
    async with httpx.AsyncClient(base_url=twin.base_url) as http:
        rejoin = await http.post(
            f"/api/meetings/{mid}/rejoin",
            json={
                "session_id": gus_grant["session_id"],
                "participant_id": gus_grant["participant_id"],
                "resume_token": gus_grant["resume_token"],
            },
        )
    assert rejoin.status_code == 403, rejoin.text
    # The old join token (15 minutes of validity left) on the WebSocket.
    with pytest.raises(websockets.InvalidStatus) as handshake:
        await SignalingClient.connect(twin.ws_url, mid, gus_grant["join_token"], "Gus again")
    assert handshake.value.response.status_code == 403

    # An account is refused from another browser too.
    await remove("Eve", "Remove")
    await expect(eve.page.locator("#ended-title")).to_have_text("You were removed from the meeting")
    again = await eve_api.post(
        "/api/auth/signin", {"email": eve_email, "password": "correct horse 1"}
    )
    assert again.status_code == 200, again.text
    elsewhere = await world.person("Eve", refresh_token=again.json()["refresh_token"])
    await open_link(elsewhere, url)
    await elsewhere.page.locator("#join-button").click()
    await expect(elsewhere.page.locator("#status")).to_have_text(refused)
    assert eve_grant["participant_id"] == eve_account["user_id"]

    # "Let back in later": the way back is the waiting room, where the host decides.
    await remove("Rae", "Remove, let back in later")
    await expect(rae.page.locator("#ended-title")).to_have_text("You were removed from the meeting")
    await open_link(rae, url)
    await rae.page.locator("#join-button").click()
    await expect(rae.page.locator("#waiting")).to_be_visible()
    await expect(ada.page.get_by_role("button", name="People, 1 waiting")).to_be_visible()
    # From the waiting-room list (a notice beside it offers the same button).
    await ada.page.locator("#queue-list").get_by_role("button", name="Admit Rae").click()
    await expect(rae.page.locator("#room")).to_be_visible()
    await expect(tile(ada.page, rae_grant["participant_id"])).to_have_count(1)
    await expect(ada.page.locator("#stage .tile")).to_have_count(2)  # Ada and Rae


async def test_the_host_leaves_handing_over_and_a_guest_rejoins_without_the_passcode(
    world: World,
) -> None:
    api, account = await world.host()
    info = await api.create_meeting(title="Handover", passcode="1357")
    url = info["join_url"]
    ada = await world.person("Ada", refresh_token=account["refresh_token"])
    await enter(ada, url)
    bob = await world.person("Bob")
    bob_grant = await enter(bob, url, passcode="1357")
    cy = await world.person("Cy")
    cy_grant = await enter(cy, url, passcode="1357")
    await open_panel(ada.page, "people")
    await ada.page.get_by_role("button", name="Make Cy a co-host").click()
    await expect(
        ada.page.locator(f'#people [data-participant="{cy_grant["participant_id"]}"] .role')
    ).to_have_text("Co-host")

    # Leave: the longest-present co-host is proposed; Ada picks Bob instead.
    await ada.page.locator("#leave-button").click()
    dialog = ada.page.locator("#confirm")
    picker = dialog.get_by_label("Next host")
    await expect(picker).to_have_value(cy_grant["participant_id"])
    await expect(picker).to_be_focused()  # the dialog opens on its first control
    await ada.page.screenshot(path=str(ARTIFACTS / "leave-dialog.png"))
    assert await axe_violations(ada.page) == []
    await picker.select_option(bob_grant["participant_id"])
    await dialog.get_by_role("button", name="Leave", exact=True).click()
    await expect(ada.page.locator("#ended-title")).to_have_text("You left the meeting")
    await expect(ada.page.get_by_role("button", name="Rejoin")).to_be_visible()
    # Bob runs the meeting now.
    await announced(bob.page, "You are the host now")
    await open_panel(bob.page, "people")
    await expect(bob.page.get_by_role("button", name="End for all")).to_be_visible()
    await expect(bob.page.locator("#people .person .role").first).to_have_text("Host")

    # Cy leaves and comes back: the normal join, the same person, no passcode asked or sent.
    await leave_as_guest(cy)
    rejoin = cy.page.get_by_role("button", name="Rejoin")
    await expect(rejoin).to_be_visible()
    async with cy.page.expect_request(
        lambda r: r.url.endswith("/join") and r.method == "POST"
    ) as sent:
        await rejoin.click()
    body = (await sent.value).post_data_json
    assert body is not None and body["passcode"] is None, body
    await expect(cy.page.locator("#room")).to_be_visible()
    await expect(cy.page.locator("#stage .tile.self")).to_have_attribute(
        "data-participant", cy_grant["participant_id"]
    )
    await expect(cy.page.locator("#passcode-row")).to_be_hidden()
    await expect(tile(bob.page, cy_grant["participant_id"])).to_have_count(1)


async def test_a_dropped_participant_shows_reconnecting_on_the_same_tile(world: World) -> None:
    twin = world.twin
    api, account = await world.host()
    info = await api.create_meeting(title="Flaky guest")
    mid = info["meeting_id"]
    ada = await world.person("Ada", refresh_token=account["refresh_token"])
    await ada.page.clock.install()  # the page's timers, moved on below
    await enter(ada, info["join_url"])
    key = new_guest_key()
    guest = Api(twin.base_url)
    world.apis.append(guest)
    grant = await guest.join(mid, "Dot", guest_key=key)
    dot = await SignalingClient.enter(twin.ws_url, grant)
    await dot.ok("join")
    dot_tile = tile(ada.page, grant["participant_id"])
    await expect(dot_tile).to_have_count(1)
    await dot_tile.evaluate("node => { node.dataset.testMark = 'first'; }")

    # The connection drops (no leave): shown reconnecting, the same tile, in the list too.
    await dot.close()
    await expect(dot_tile.locator(".tile-reconnecting")).to_be_visible()
    await expect(dot_tile).to_have_attribute("aria-label", re.compile("Dot, reconnecting"))
    await open_panel(ada.page, "people")
    row = ada.page.locator(f'#people [data-participant="{grant["participant_id"]}"]')
    await expect(row).to_contain_text("Reconnecting…")
    await announced(ada.page, "Dot lost their connection")
    await ada.page.wait_for_timeout(1500)
    await expect(dot_tile).to_have_count(1)  # still there, well inside the window

    # Back within the window: the same tile, no longer reconnecting.
    response = await guest.post(
        f"/api/meetings/{mid}/rejoin",
        {
            "session_id": grant["session_id"],
            "participant_id": grant["participant_id"],
            "resume_token": grant["resume_token"],
        },
    )
    assert response.status_code == 200, response.text
    back = await SignalingClient.enter(twin.ws_url, response.json())
    await back.ok("join")
    await expect(dot_tile.locator(".tile-reconnecting")).to_be_hidden()
    await expect(dot_tile).to_have_attribute("data-test-mark", "first")
    await expect(row).not_to_contain_text("Reconnecting…")

    # Dropped again, and the window passes (the server's clock and the page's): gone.
    await back.close()
    await expect(dot_tile.locator(".tile-reconnecting")).to_be_visible()
    twin.local.set_clock_offset(125)
    try:
        await ada.page.clock.fast_forward("02:05")
        await expect(dot_tile).to_have_count(0)
        await expect(row).to_have_count(0)
        await expect(ada.page.locator("#stage .tile")).to_have_count(1)
    finally:
        twin.local.set_clock_offset(0)


async def _playing(page: Page, selector: str) -> None:
    """The video in `selector` has a picture and its clock moves on (frames advance)."""
    video = f"document.querySelector('{selector} video')"
    await page.wait_for_function(
        f"() => {{ const v = {video}; return v && v.videoWidth > 0 && v.currentTime > 0.3; }}",
        timeout=45_000,
    )
    assert await presents_frames(page, f"{selector} video") == [True], selector


async def _forwarded(twin: Twin) -> int:
    (node,) = twin.local.media_nodes
    health = await asyncio.to_thread(node.health)
    streams: int = health["forwarded_streams"]
    return streams


async def test_a_webinar_keeps_attendees_watching_until_one_is_allowed_to_talk(
    world: World,
) -> None:
    twin = world.twin
    api, account = await world.host()
    info = await api.create_meeting(title="Product webinar", kind="webinar")
    url = info["join_url"]
    ada = await world.person("Ada", devices=True, refresh_token=account["refresh_token"])
    ada_id = (await enter(ada, url))["participant_id"]
    pam = await world.person("Pam", devices=True)
    ann = await world.person("Ann", devices=True)
    abe = await world.person("Abe", devices=True)
    grants: dict[str, dict[str, Any]] = {}
    for person in (pam, ann, abe):
        await open_link(person, url)
        # The "watch" pre-join: nothing to check, no camera or microphone asked for.
        await expect(person.page.locator("#prejoin")).to_contain_text("You will watch this webinar")
        grants[person.name] = await enter(person, url)
        assert grants[person.name]["role"] == "attendee"
    ids = {name: grant["participant_id"] for name, grant in grants.items()}
    for person in (pam, ann, abe):
        assert await person.page.evaluate("window.deviceRequests") == 0, person.name
        await expect(person.page.locator("#mic-button")).to_be_hidden()
        await expect(person.page.locator("#watch-state")).to_have_text("Watching")
    # No tile for an attendee, on anyone's page: the host's alone on every stage.
    for page in (ada.page, ann.page):
        await expect(page.locator("#stage .tile")).to_have_count(1)
    await _playing(ann.page, "#stage .tile")
    # Attendees do not see each other, nor can they write to each other privately.
    await open_panel(ann.page, "people")
    people = ann.page.locator("#people .person")
    await expect(people).to_have_count(2)  # Ada and Ann herself
    await expect(ann.page.locator("#people-panel")).not_to_contain_text("Abe")
    await expect(ann.page.locator("#audience")).to_be_hidden()
    await open_panel(ann.page, "chat")
    options = await ann.page.locator("#chat-to option").all_inner_texts()
    assert options == ["Everyone", "Ada (private)"], options
    await ann.page.screenshot(path=str(ARTIFACTS / "webinar-attendee.png"))
    assert await axe_violations(ann.page) == []
    # The host sees the audience, counted; Ann's raised hand asks to talk.
    await open_panel(ada.page, "people")
    await expect(ada.page.locator("#audience h2")).to_contain_text("Attendees (3)")
    await expect(ada.page.locator("#audience-list .person")).to_have_count(3)
    await ann.page.get_by_role("button", name="Raise hand").click()
    await expect(ada.page.locator("#hands-list")).to_contain_text("Ann")
    await expect(ada.page.get_by_role("button", name="Allow Ann to talk").first).to_be_visible()
    await announced(ada.page, "Ann raised their hand")
    before = await _forwarded(twin)

    # Pam is allowed to talk: her page asks for the devices now and publishes, no reload.
    await pam.page.evaluate("window.notReloaded = true")
    await ada.page.get_by_role("button", name="Allow Pam to talk").click()
    await expect(pam.page.locator("#camera-button")).to_be_enabled()
    await expect(pam.page.locator("#camera-button")).to_be_visible()
    await expect(pam.page.locator("#watch-state")).to_be_hidden()
    assert await pam.page.evaluate("window.deviceRequests") >= 1
    for page in (ada.page, ann.page):
        await expect(tile(page, ids["Pam"])).to_have_count(1)
        await _playing(page, f'#stage .tile[data-participant="{ids["Pam"]}"]')
    await expect(pam.page.locator("#stage .tile.self")).to_have_count(1)
    await open_panel(ada.page, "people")
    await expect(ada.page.locator("#audience h2")).to_contain_text("Attendees (2)")
    await ada.page.screenshot(path=str(ARTIFACTS / "webinar-host.png"))
    talking = max([await _forwarded(twin) for _ in range(3)])
    assert talking > before, (before, talking)

    # And back to watching: her tile goes, the node stops forwarding her, her devices are off.
    await ada.page.get_by_role("button", name="Stop Pam talking").click()
    for page in (ada.page, ann.page):
        await expect(tile(page, ids["Pam"])).to_have_count(0)
    await expect(pam.page.locator("#camera-button")).to_be_hidden()
    await expect(pam.page.locator("#watch-state")).to_be_visible()
    await expect(pam.page.locator("#stage .tile.self")).to_have_count(0)
    await pam.page.wait_for_function(
        "() => window.deviceStreams.every(s => s.getTracks().every(t => t.readyState === 'ended'))"
    )
    deadline = time.monotonic() + 15
    after = await _forwarded(twin)
    while after > talking - 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        after = await _forwarded(twin)
    assert after <= talking - 3, (before, talking, after)
    # She still watches (her media rebuilt watch-only), on the same page.
    await _playing(pam.page, f'#stage .tile[data-participant="{ada_id}"]')
    assert await pam.page.evaluate("window.notReloaded === true")


async def _session(
    twin: Twin, api: Api, meeting_id: str, *, end: bool = True, guest_key: str | None = None
) -> tuple[str, SignalingClient]:
    """One run of the meeting through the API: the host starts it (and ends it). With
    `guest_key`, a guest comes, leaves and comes back: one person, two intervals."""
    host = await SignalingClient.enter(twin.ws_url, await api.join(meeting_id, "Ada"))
    await host.ok("join")
    if guest_key:
        guest = Api(twin.base_url)
        for _ in range(2):
            client = await SignalingClient.enter(
                twin.ws_url, await guest.join(meeting_id, "Gil", guest_key=guest_key)
            )
            await client.ok("join")
            await client.ok("leave")
            await client.close()
        await guest.close()
    if end:
        await host.ok("end")
        await host.close()
    return host.session_id, host


async def test_the_dashboard_lists_live_and_past_sessions_with_their_summaries(
    world: World,
) -> None:
    twin = world.twin
    api, account = await world.host()
    retro = await api.create_meeting(title="Retro", rrule="FREQ=WEEKLY;BYDAY=FR")
    mid = retro["meeting_id"]
    # More than a page of sessions (5 a page): the first with a guest who came twice, six
    # more, and one running now.
    first, _ = await _session(twin, api, mid, guest_key=new_guest_key())
    for _ in range(6):
        await _session(twin, api, mid)
    _, live = await _session(twin, api, mid, end=False)
    # A one-off whose day has passed (2026-12-01), run once: listed under "Past".
    kickoff = await api.create_meeting(title="Kickoff")
    await _session(twin, api, kickoff["meeting_id"])
    try:
        ada = await world.person("Ada", refresh_token=account["refresh_token"])
        page = ada.page
        await page.goto(f"{twin.base_url}/dashboard.html")
        card = page.locator(f'#meetings li[data-meeting-id="{mid}"]')
        await expect(card.locator(".badge-live")).to_have_text("Live now")
        await expect(card.get_by_role("link", name="Join", exact=True)).to_be_visible()
        past = page.locator("#past-group")
        await expect(past.get_by_role("heading", name="Past")).to_be_visible()
        await expect(past.locator(f'li[data-meeting-id="{kickoff["meeting_id"]}"]')).to_be_visible()
        await expect(past.locator(".badge-live")).to_have_count(0)

        toggle = card.get_by_role("button", name="Past sessions")
        await toggle.click()
        await expect(toggle).to_have_attribute("aria-expanded", "true")
        items = card.locator(".sessions-list li")
        await expect(items).to_have_count(5)
        await expect(items.first).to_contain_text("Live now")
        await card.get_by_role("button", name="Show more").click()
        await expect(items).to_have_count(8)
        await expect(items.nth(5).locator("a")).to_be_focused()
        await expect(card.get_by_role("button", name="Show more")).to_be_hidden()
        await expect(card.locator(".sessions-status")).to_have_text("8 sessions shown.")
        await page.screenshot(path=str(ARTIFACTS / "dashboard-sessions.png"), full_page=True)
        assert await axe_violations(page) == []

        # The oldest session's summary: Gil once, with both of his intervals.
        oldest = items.nth(7).locator("a")
        await expect(oldest).to_have_attribute("href", f"/summary.html?m={mid}&s={first}")
        await oldest.click()
        await expect(page.locator("#when")).to_contain_text("Session of")
        attendance = page.locator("#attendance table")
        await expect(attendance.locator("caption")).to_have_text("2 people attended")
        gil = attendance.locator("tbody tr", has_text="Gil")
        await expect(gil).to_have_count(1)
        await expect(gil.locator(".intervals li")).to_have_count(2)
        await expect(page.locator("#sessions .current")).to_have_count(1)
        await page.screenshot(path=str(ARTIFACTS / "summary-session.png"), full_page=True)
        assert await axe_violations(page) == []

        # The schedule form: guests may start before the host only when asked, never in a
        # webinar.
        await page.goto(f"{twin.base_url}/dashboard.html")
        form = page.locator("#schedule-form")
        allow = form.get_by_label("Allow guests to start before the host")
        await expect(allow).not_to_be_checked()
        await form.get_by_label("Webinar").check()
        await expect(allow).to_be_disabled()
        await form.locator("input[name=kind][value=meeting]").check()
        await expect(allow).to_be_enabled()
        await allow.check()
        await form.get_by_label("Title").fill("Open office hours")
        async with page.expect_response(
            lambda r: r.url.endswith("/api/meetings") and r.request.method == "POST"
        ) as answer:
            await form.get_by_role("button", name="Schedule meeting").click()
        created = await (await answer.value).json()
        assert created["allow_before_host"] is True
    finally:
        await live.close()
