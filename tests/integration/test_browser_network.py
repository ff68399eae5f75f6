"""A flaky network never loses a participant, and never says the wrong thing, in real Chromium
(issue 10: "A reload keeps you in", "A flaky network never loses you").

One twin (one SFU node), one browser and one meeting serve the module: Ada, the signed-in host,
and Bob, a guest, both with their cameras off (cheap on two shared cores). Bob's WebSocket goes
through a relay this test holds (`Relay`, Playwright's `route_web_socket`), which can stall it
the way a dead network does: frames held both ways, the socket not reset, and later delivered.
His `/rejoin` calls go through a route that can lose an answer after the server acted on it.

The meeting has a passcode, which Bob types once, when he first joins.

- a reload within the reconnect window keeps Bob: same participant, nobody saw him leave, his
  private messages are still there, his microphone still off;
- a reload after the window (Cy, a third guest, whose network was gone for more than the
  window: the twin's clock and her page's clock moved on) joins again through the normal join
  as the same participant, without the form and without the passcode, her microphone still off,
  and the others see her back on the same tile;
- a stalled socket is shown within a few seconds (heartbeat) and recovers when released;
- a chat sent into a stall is shown "Sending…", never "not sent", and after the network comes
  back (its frame delivered late on the old socket, the page's retry on the new one with the
  same request id) it appears exactly once on every page;
- a lost answer to `/rejoin` (and a 503) is retried with the same token: same participant;
- in the room, during a stall, a refused action's notice ("Could not share the screen")
  shows beside "Reconnecting…" and goes, while "Reconnecting…" stays until the network is back;
- the browser's `offline` and `online` events: shown at once, reconnected at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, Route, WebSocketRoute, expect
from playwright.async_api import Error as PlaywrightError

from infra.twin.server import TwinOptions
from tests.integration.browser import ARTIFACTS
from tests.integration.client import Api
from tests.integration.conftest import Twin, _start
from tests.integration.room_pages import Person, join, new_person, open_panel

pytestmark = pytest.mark.asyncio(loop_scope="module")

LOST = "Connection lost. Reconnecting…"
BACK = "Reconnected."
PASSCODE = "2468"
RETURNING = "Taking you back into the meeting…"
# The heartbeat (web/signaling.js): a ping after 4 s of silence, stalled if no pong in 3 s,
# checked every second: at most ~9 s from the last frame heard to the banner.
DETECT_WITHIN_S = 10.0

# The page's media has published and subscribed at least once (web/media.js marks both).
MEDIA_NEGOTIATED = """() => ['published', 'subscribed'].every(
  (what) => performance.getEntriesByName(`townhall:media-${what}`).length > 0)"""

# Test instrumentation: whether a document of the join page ever offers its form (the name or
# passcode field, or an enabled Join button, on screen), from the moment its script has run
# (DOMContentLoaded comes after the page's module) to the end.
FORM_WATCH = """
window.formOffered = [];
document.addEventListener('DOMContentLoaded', () => {
  const app = document.getElementById('app');
  if (!app || !document.getElementById('join')) return;
  const shown = (id) => { const e = document.getElementById(id); return Boolean(e) && e.checkVisibility(); };
  const look = () => {
    const offered = ['name', 'passcode', 'join-button'].filter(
      (id) => shown(id) && !(id === 'join-button' && document.getElementById(id).disabled));
    if (offered.length) window.formOffered.push(offered.join(' '));
  };
  look();
  new MutationObserver(look).observe(app, { subtree: true, childList: true, attributes: true,
    attributeFilter: ['hidden', 'disabled'] });
});
"""


@dataclass
class Link:
    page: WebSocketRoute
    server: WebSocketRoute


@dataclass
class Relay:
    """The page's sockets, passed through. `stall()` holds every frame (and close) both ways
    without resetting anything, as a dead network does; `release()` delivers what was held, in
    order, and passes frames through again."""

    stalled: bool = False
    links: list[Link] = field(default_factory=list)
    held: list[Callable[[], None]] = field(default_factory=list)
    sent: list[tuple[float, str]] = field(default_factory=list)  # page -> server text frames
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def route(self, ws: WebSocketRoute) -> None:
        link = Link(ws, ws.connect_to_server())
        self.links.append(link)
        ws.on_message(lambda m: self._pass(lambda: self._to_server(link, m)))
        link.server.on_message(lambda m: self._pass(lambda: link.page.send(m)))
        ws.on_close(lambda code, reason: self._pass(lambda: self._close(link.server, code, reason)))
        link.server.on_close(
            lambda code, reason: self._pass(lambda: self._close(link.page, code, reason))
        )

    def _pass(self, deliver: Callable[[], None]) -> None:
        if self.stalled:
            self.held.append(deliver)
        else:
            deliver()

    def _to_server(self, link: Link, message: str | bytes) -> None:
        if isinstance(message, str):
            self.sent.append((time.monotonic(), message))
        link.server.send(message)

    def _close(self, side: WebSocketRoute, code: int | None, reason: str | None) -> None:
        valid = code == 1000 or (code is not None and 3000 <= code <= 4999)
        task = asyncio.get_running_loop().create_task(
            side.close(code=code if valid else 1000, reason=reason or "")
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def stall(self) -> None:
        self.stalled = True

    def release(self) -> None:
        self.stalled = False
        held, self.held = self.held, []
        for deliver in held:
            # A side that closed meanwhile drops what was meant for it, as a network would.
            with contextlib.suppress(PlaywrightError):
                deliver()

    async def reset(self) -> None:
        """The network comes back having reset what it stalled: the held frames are lost, and
        both ends see their sockets closed (the server runs $disconnect); new sockets pass."""
        for link in self.links:
            for side in (link.server, link.page):
                with contextlib.suppress(PlaywrightError):
                    await side.close(code=1000, reason="network reset")
        self.links = []
        self.held = []
        self.stalled = False

    def pings_since(self, since: float) -> int:
        return sum(1 for at, text in self.sent if at >= since and '"action":"ping"' in text)


@dataclass
class RejoinRoute:
    """POST /rejoin of one page: failed while the relay is stalled (no network), and otherwise
    per `plan`: "lose" performs the request (the server rotates the token) and drops the
    answer; "503" answers 503 without asking the server; then requests pass."""

    relay: Relay
    plan: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    joins: int = 0  # POST /join: the normal join, which a resume does not use

    async def count_join(self, route: Route) -> None:
        self.joins += 1
        await route.continue_()

    async def handle(self, route: Route) -> None:
        if self.relay.stalled:
            self.outcomes.append("offline")
            await route.abort("internetdisconnected")
            return
        step = self.plan.pop(0) if self.plan else "pass"
        self.outcomes.append(step)
        if step == "lose":
            response = await route.fetch()
            assert response.status == 200, await response.text()
            await route.abort("connectionreset")
        elif step == "503":
            await route.fulfill(status=503, json={"error": {"code": "unavailable", "message": "x"}})
        else:
            await route.continue_()


@dataclass
class Meeting:
    twin: Twin
    info: dict[str, Any]
    ada: Person
    bob: Person
    relay: Relay
    rejoins: RejoinRoute

    @property
    def meeting_id(self) -> str:
        meeting_id: str = self.info["meeting_id"]
        return meeting_id


def devices(mic: bool) -> str:
    """The pre-join check's remembered choice (web/prejoin.js): camera off, microphone as given."""
    prefs = f'{{"micOn": {str(mic).lower()}, "cameraOn": false}}'
    return f"if (!localStorage.getItem('townhall.media')) localStorage.setItem('townhall.media', '{prefs}');"


@pytest.fixture(scope="module")
def network_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    yield from _start(tmp_path_factory, TwinOptions(media_nodes=1))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def meeting(network_twin: Twin, room_browser: Browser) -> AsyncIterator[Meeting]:
    host_api = Api(network_twin.base_url)
    account = await host_api.sign_up(f"net-{uuid.uuid4().hex[:6]}@example.com", name="Ada")
    info = await host_api.create_meeting(title="Flaky network", passcode=PASSCODE)
    ada = await new_person(room_browser, "Ada", refresh_token=account["refresh_token"])
    bob = await new_person(room_browser, "Bob")
    await ada.context.add_init_script(devices(mic=False))
    await bob.context.add_init_script(devices(mic=True))
    await bob.context.add_init_script(FORM_WATCH)
    relay = Relay()
    rejoins = RejoinRoute(relay)
    await bob.page.route_web_socket(re.compile(r"/ws\?"), relay.route)
    await bob.page.route("**/api/meetings/*/rejoin", rejoins.handle)
    await bob.page.route("**/api/meetings/*/join", rejoins.count_join)
    expect.set_options(timeout=15_000)
    try:
        await join(ada, info["join_url"])
        await join_with_passcode(bob, info["join_url"])
        yield Meeting(network_twin, info, ada, bob, relay, rejoins)
        for person in (ada, bob):
            assert person.errors == [], person.errors
    finally:
        relay.release()
        expect.set_options(timeout=5_000)
        for person in (ada, bob):
            await leave_page(person)
        await host_api.close()


async def leave_page(person: Person) -> None:
    """Close a person's browser profile, after navigating away: the page's peer connections
    close as they do when a tab closes, so the media node sees those sessions end. A profile
    closed with the room open leaves them all to time out, and stopping the twin then always
    waits out its 15 s stop timeout for the node (it still does when a media negotiation was
    in flight at the end)."""
    with contextlib.suppress(PlaywrightError):
        await person.page.goto("about:blank")
    await person.context.close()


async def join_with_passcode(person: Person, url: str) -> None:
    """A guest's first join: their name and the meeting's passcode, typed into the form."""
    page = person.page
    await page.goto(url)
    await expect(page.locator("#passcode")).to_be_visible()
    await page.fill("#name", person.name)
    await page.fill("#passcode", PASSCODE)
    await page.locator("#join-button").click()
    await expect(page.locator("#room")).to_be_visible(timeout=15_000)
    await expect(page.locator("#stage .tile.self")).to_have_count(1)


async def banner_log(page: Page) -> list[str]:
    log: list[str] = await page.evaluate("window.bannerLog")
    return log


async def said_after(page: Page, text: str, start: int, timeout_s: float) -> None:
    """The banner showed `text` (alone or beside a notice) at entry `start` of its log or later."""
    try:
        await page.wait_for_function(
            "([text, start]) => window.bannerLog.slice(start).some((t) => t.includes(text))",
            arg=[text, start],
            timeout=timeout_s * 1000,
        )
    except Exception as error:
        raise AssertionError(f"banner said {await banner_log(page)}, not {text!r}") from error


async def recovered_after(page: Page, start: int, timeout_s: float) -> None:
    """From entry `start` of the banner's log on: "Reconnecting…", then "Reconnected." alone."""
    try:
        await page.wait_for_function(
            """([lost, back, start]) => {
              const log = window.bannerLog.slice(start);
              const down = log.findIndex((t) => t.includes(lost));
              return down >= 0 && log.slice(down + 1).includes(back);
            }""",
            arg=[LOST, BACK, start],
            timeout=timeout_s * 1000,
        )
    except Exception as error:
        raise AssertionError(f"banner said {await banner_log(page)}") from error


async def until(check: Callable[[], bool], timeout_s: float, what: Callable[[], Any]) -> None:
    """Wait (polling this side's state, such as routed requests) until `check()` holds."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(what())
        await asyncio.sleep(0.05)


async def events_since(page: Page, seq: int) -> list[list[Any]]:
    events: list[list[Any]] = await page.evaluate("window.testEvents")
    return [e for e in events if e[0] > seq]


async def last_seq(page: Page) -> int:
    seq: int = await page.evaluate("Math.max(0, ...window.testEvents.map(e => e[0]))")
    return seq


async def bob_is_still_bob(m: Meeting, bob_id: str, seq_before: int) -> None:
    """Ada still has Bob's tile (the same participant) and never heard that he left."""
    await expect(m.ada.page.locator(f'#stage .tile[data-participant="{bob_id}"]')).to_have_count(1)
    left = [e for e in await events_since(m.ada.page, seq_before) if e[1] == "participant.left"]
    assert left == [], left
    assert await m.bob.participant_id() == bob_id


def chat_items(m: Meeting, text: str) -> list[dict[str, Any]]:
    return [i for i in m.twin.meeting_items(m.meeting_id) if i.get("text") == text]


async def test_a_reload_keeps_the_participant_and_their_private_chat(meeting: Meeting) -> None:
    m = meeting
    ada, bob = m.ada, m.bob
    bob_id = await bob.participant_id()
    ada_id = await ada.participant_id()
    # Private both ways, then Bob turns his microphone off.
    await open_panel(bob.page, "chat")
    await bob.page.select_option("#chat-to", ada_id)
    await bob.page.fill("#text", "just between us")
    await bob.page.keyboard.press("Enter")
    await open_panel(ada.page, "chat")
    await expect(ada.page.locator("#chat")).to_contain_text("just between us")
    await ada.page.select_option("#chat-to", bob_id)
    await ada.page.fill("#text", "noted, privately")
    await ada.page.keyboard.press("Enter")
    await expect(bob.page.locator("#chat")).to_contain_text("noted, privately")
    await expect(bob.page.locator("#mic-button")).to_have_attribute("aria-pressed", "false")
    await bob.page.locator("#mic-button").click()
    await expect(bob.page.locator("#mic-button")).to_have_attribute("aria-pressed", "true")
    await expect(ada.page.locator(f'#stage .tile[data-participant="{bob_id}"]')).to_have_count(1)
    seq_before = await last_seq(ada.page)
    joins_before = m.rejoins.joins
    m.rejoins.outcomes.clear()
    # The credential is in the tab's sessionStorage, never in the URL.
    assert "token" not in bob.page.url
    stored = await bob.page.evaluate(f"sessionStorage.getItem('townhall.resume.{m.meeting_id}')")
    assert stored and bob_id in stored

    await bob.page.reload()
    # Back in the room without the form: no click, no name, no passcode.
    await expect(bob.page.locator("#room")).to_be_visible()
    await expect(bob.page.locator("#stage .tile.self")).to_have_count(1)
    await bob_is_still_bob(m, bob_id, seq_before)
    # Through the resume credential (/rejoin), not the normal join.
    assert m.rejoins.outcomes == ["pass"], m.rejoins.outcomes
    assert m.rejoins.joins == joins_before
    # His private messages, both ways, from the rejoin snapshot; his microphone still off.
    await open_panel(bob.page, "chat")
    await expect(bob.page.locator("#chat")).to_contain_text("just between us")
    await expect(bob.page.locator("#chat")).to_contain_text("noted, privately")
    await expect(bob.page.locator("#chat .chat-message.private")).to_have_count(2)
    await expect(bob.page.locator("#mic-button")).to_have_attribute("aria-pressed", "true")
    # Silently: nothing on the banner of the page that came back, and the form never offered.
    assert await banner_log(bob.page) == []
    assert await bob.page.evaluate("window.formOffered") == []


async def test_a_stalled_socket_is_shown_within_seconds_and_recovers(meeting: Meeting) -> None:
    m = meeting
    bob = m.bob
    bob_id = await bob.participant_id()
    seq_before = await last_seq(m.ada.page)
    start = len(await banner_log(bob.page))
    # The heartbeat is cheap: a ping only after 4 s without a frame.
    quiet_from = time.monotonic()
    await bob.page.wait_for_timeout(5000)
    assert m.relay.pings_since(quiet_from) <= 2, m.relay.sent[-5:]

    m.relay.stall()
    stalled_at = time.monotonic()
    await said_after(bob.page, LOST, start, DETECT_WITHIN_S + 5)
    noticed = time.monotonic() - stalled_at
    print(f"stall shown after {noticed:.1f} s")
    assert noticed <= DETECT_WITHIN_S, noticed
    await expect(bob.page.locator("#room")).to_have_attribute("data-connection", "reconnecting")
    # (That it keeps saying so for as long as the stall lasts, beside any notice, is
    # test_the_reconnecting_banner_outlasts_other_notices.)
    await expect(bob.page.locator("#banner")).to_contain_text(LOST)

    m.relay.release()
    released_at = time.monotonic()
    await recovered_after(bob.page, start, 15)
    print(f"recovered {time.monotonic() - released_at:.1f} s after the network came back")
    await expect(bob.page.locator("#room")).to_have_attribute("data-connection", "reconnected")
    await bob_is_still_bob(m, bob_id, seq_before)


async def test_a_chat_sent_into_a_stall_appears_once_on_every_page(meeting: Meeting) -> None:
    m = meeting
    ada, bob = m.ada, m.bob
    text = f"exactly once {uuid.uuid4().hex[:6]}"
    start = len(await banner_log(bob.page))
    await open_panel(bob.page, "chat")
    await open_panel(ada.page, "chat")
    await bob.page.select_option("#chat-to", "")

    m.relay.stall()
    await bob.page.fill("#text", text)
    await bob.page.keyboard.press("Enter")
    pending = bob.page.locator("#chat li.pending")
    await expect(pending).to_contain_text(text)
    await expect(pending.locator(".chat-status")).to_have_text("Sending…")
    await said_after(bob.page, LOST, start, DETECT_WITHIN_S + 5)
    # The frame may still be delivered: never "not sent", and nothing to send again.
    await bob.page.wait_for_timeout(1000)
    await expect(pending.locator(".chat-status")).to_have_text("Sending…")
    assert not [t for t in await banner_log(bob.page) if "not sent" in t]
    await expect(bob.page.locator("#text")).to_have_value("")
    await bob.page.keyboard.press("Enter")  # Send again, on an empty box: nothing

    # The network comes back: the old socket's frames arrive first (the chat is posted from
    # them), then the page rejoins and sends its unconfirmed chat again, with the same id.
    m.relay.release()
    await recovered_after(bob.page, start, 15)
    await expect(pending).to_have_count(0)
    for person in (ada, bob):
        mine = person.page.locator("#chat li.chat-message", has_text=text)
        await expect(mine).to_have_count(1)
    await bob.page.wait_for_timeout(1000)  # a late copy would show by now
    for person in (ada, bob):
        await expect(person.page.locator("#chat li.chat-message", has_text=text)).to_have_count(1)
    assert len(chat_items(m, text)) == 1
    # The retry went out with the first one's id (the server refused the copy).
    sent = [frame for _, frame in m.relay.sent if text in frame]
    assert len(sent) == 2, sent
    ids = {json.loads(frame)["id"] for frame in sent}
    assert len(ids) == 1, sent


async def test_a_lost_rejoin_answer_is_retried_and_keeps_the_participant(
    meeting: Meeting,
) -> None:
    m = meeting
    bob = m.bob
    bob_id = await bob.participant_id()
    seq_before = await last_seq(m.ada.page)
    start = len(await banner_log(bob.page))
    before = m.twin.connection_of(m.meeting_id, bob_id)
    assert before
    # The server acts on the first /rejoin (it rotates the resume token) but its answer is
    # lost; the second meets a 503; the third goes through, with the same token as the first.
    m.rejoins.plan = ["lose", "503"]
    m.rejoins.outcomes.clear()
    await asyncio.to_thread(m.twin.local.management_client().delete_connection, ConnectionId=before)
    await recovered_after(bob.page, start, 20)
    assert m.rejoins.outcomes[:3] == ["lose", "503", "pass"], m.rejoins.outcomes
    after = m.twin.connection_of(m.meeting_id, bob_id)
    assert after and after != before
    await bob_is_still_bob(m, bob_id, seq_before)
    await expect(bob.page.locator("#room")).to_be_visible()


async def test_the_reconnecting_banner_outlasts_other_notices(meeting: Meeting) -> None:
    """The room's own banner, during a real stall: Bob shares his screen into it, and when the
    stall is found the share is refused ("Could not share the screen", a notice of 6 s). It
    shows beside "Reconnecting…" (the connection's line), goes, and "Reconnecting…" stays
    until the network is back; then "Reconnected." alone, then nothing."""
    m = meeting
    bob = m.bob
    bob_id = await bob.participant_id()
    seq_before = await last_seq(m.ada.page)
    banner = bob.page.locator("#banner")
    lines = banner.locator(".banner-line")
    refused = re.compile(r"^Could not share the screen: ")
    # His media negotiated first (a stall in the middle of it rightly adds the media's own
    # line, "Audio and video did not connect. Trying again…").
    await bob.page.wait_for_function(MEDIA_NEGOTIATED)
    start = len(await banner_log(bob.page))

    m.relay.stall()
    # The share's offer goes into the stalled socket; the heartbeat finds the stall.
    await bob.page.locator("#share-button").click()
    await said_after(bob.page, LOST, start, DETECT_WITHIN_S + 5)
    # Both lines: the connection's state first, the notice below it.
    await expect(lines).to_have_text([LOST, refused])
    await expect(banner).to_have_attribute("data-kind", "error")
    ARTIFACTS.mkdir(exist_ok=True)
    await bob.page.screenshot(path=str(ARTIFACTS / "banner-reconnecting-and-notice.png"))
    await expect(bob.page.locator("#share-button")).to_have_attribute("aria-pressed", "false")
    # The notice goes after its 6 s; the connection is still down and the page says so.
    await expect(lines).to_have_text([LOST], timeout=10_000)
    await expect(banner).to_have_attribute("data-kind", "warning")
    await expect(bob.page.locator("#room")).to_have_attribute("data-connection", "reconnecting")
    log = await banner_log(bob.page)
    assert not [t for t in log[start:] if t == "" or (refused.match(t) and LOST not in t)], log

    # The network comes back having reset the stalled socket (the share's offer never reaches
    # the media node, whose late arrival would replace Bob's working publisher).
    await m.relay.reset()
    await recovered_after(bob.page, start, 15)
    await expect(lines).to_have_text([BACK])
    await expect(banner).to_be_hidden(timeout=8_000)  # "Reconnected." is shown for 4 s
    await bob_is_still_bob(m, bob_id, seq_before)
    await expect(bob.page.locator("#share-button")).to_have_attribute("aria-pressed", "false")


async def test_offline_is_shown_at_once_and_online_reconnects_at_once(meeting: Meeting) -> None:
    m = meeting
    ada = m.ada
    ada_id = await ada.participant_id()
    start = len(await banner_log(ada.page))
    await ada.context.set_offline(True)
    try:
        went = time.monotonic()
        await said_after(ada.page, LOST, start, 3)  # the `offline` event, not the heartbeat
        print(f"offline shown after {time.monotonic() - went:.1f} s")
        # In its offline wait by then (30 s): only the `online` event ends it within seconds.
        await ada.page.wait_for_timeout(1500)
    finally:
        await ada.context.set_offline(False)
    back = time.monotonic()
    await recovered_after(ada.page, start, 4)  # the `online` event ends the wait at once
    print(f"reconnected {time.monotonic() - back:.1f} s after the network came back")
    assert await ada.participant_id() == ada_id
    await expect(m.bob.page.locator(f'#stage .tile[data-participant="{ada_id}"]')).to_have_count(1)


@dataclass
class JoinCalls:
    """One page's POST /join and /rejoin, numbered by the document that made them (a reload
    is a new document). /rejoin from the document `cut` fails: its network is gone. A /join of
    a later document waits for `hold` to be set, so the test can look at the page meanwhile."""

    page: Page
    document: int = 0
    cut: int | None = None
    hold: asyncio.Event = field(default_factory=asyncio.Event)
    calls: list[tuple[int, str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        def navigated(frame: Any) -> None:
            if frame == self.page.main_frame:
                self.document += 1

        self.page.on("framenavigated", navigated)

    async def rejoin(self, route: Route) -> None:
        self.calls.append((self.document, "rejoin", None))
        if self.document == self.cut:
            await route.abort("internetdisconnected")
        else:
            await route.continue_()

    async def join(self, route: Route) -> None:
        self.calls.append((self.document, "join", route.request.post_data_json))
        if self.cut is not None and self.document > self.cut:
            await self.hold.wait()
        await route.continue_()

    def of(self, document: int) -> list[tuple[str, Any]]:
        return [(kind, body) for d, kind, body in self.calls if d == document]


async def test_a_reload_after_the_reconnect_window_joins_again_as_the_same_person(
    meeting: Meeting, room_browser: Browser
) -> None:
    """Cy's network is gone for longer than the reconnect window (2 minutes, moved on for the
    twin and for her page); when it is back she reloads. The page joins through the normal join
    (not /rejoin) as the same participant: no form, no passcode, her microphone as she left it,
    and the others see her come back on the tile she had."""
    m = meeting
    ada = m.ada
    cy = await new_person(room_browser, "Cy")
    calls = JoinCalls(cy.page)
    try:
        await cy.context.add_init_script(devices(mic=True))
        await cy.context.add_init_script(FORM_WATCH)
        await cy.page.clock.install()  # the page's clock runs as usual until moved below
        await cy.page.route("**/api/meetings/*/rejoin", calls.rejoin)
        await cy.page.route("**/api/meetings/*/join", calls.join)
        await join_with_passcode(cy, m.info["join_url"])
        cy_id = await cy.participant_id()
        cy_tile = ada.page.locator(f'#stage .tile[data-participant="{cy_id}"]')
        await expect(cy_tile).to_have_count(1)
        # In the room she turns her microphone off.
        await expect(cy.page.locator("#mic-button")).to_have_attribute("aria-pressed", "false")
        await cy.page.locator("#mic-button").click()
        await expect(cy.page.locator("#mic-button")).to_have_attribute("aria-pressed", "true")
        await expect(cy_tile).to_have_attribute("aria-label", re.compile(", muted"))
        seq_before = await last_seq(ada.page)

        # Her network goes: the socket drops (the server sees it) and /rejoin cannot get out.
        calls.cut = calls.document
        start = len(await banner_log(cy.page))
        connection = m.twin.connection_of(m.meeting_id, cy_id)
        assert connection
        client = m.twin.local.management_client()
        await asyncio.to_thread(client.delete_connection, ConnectionId=connection)
        await said_after(cy.page, LOST, start, 5)
        await expect(cy_tile.locator(".tile-reconnecting")).to_be_visible()
        # More than the reconnect window passes, for the control plane and for her page.
        m.twin.local.set_clock_offset(130)
        try:
            await cy.page.clock.fast_forward("02:10")
            cut = calls.cut
            await until(lambda: ("rejoin", None) in calls.of(cut), 10, lambda: calls.calls)

            # The network is back, and she reloads.
            await cy.page.reload(wait_until="commit")
            reloaded = cut + 1
            await until(lambda: calls.document == reloaded, 5, lambda: calls.document)
            # While it works: the meeting and what is happening, not the form.
            await expect(cy.page.locator("#returning")).to_contain_text(RETURNING)
            await expect(cy.page.locator("#join")).to_be_hidden()
            await expect(cy.page.locator("#passcode")).to_be_hidden()
            await expect(cy.page.locator("#title")).to_have_text(m.info["title"])
            await until(lambda: len(calls.of(reloaded)) == 1, 15, lambda: calls.calls)
            ARTIFACTS.mkdir(exist_ok=True)
            await cy.page.screenshot(path=str(ARTIFACTS / "reload-after-window.png"))
            calls.hold.set()

            await expect(cy.page.locator("#room")).to_be_visible()
            await expect(cy.page.locator("#stage .tile.self")).to_have_attribute(
                "data-participant", cy_id
            )
            await expect(cy.page.locator("#lobby")).to_be_hidden()
            # The normal join, once, with no passcode; no /rejoin from the reloaded page.
            made = calls.of(reloaded)
            assert [kind for kind, _ in made] == ["join"], made
            body = made[0][1]
            assert body["passcode"] is None and body["display_name"] == "Cy", body
            assert body["guest_key"], body
            assert await cy.page.locator("#passcode").input_value() == ""
            # The form was never offered by the reloaded page, not even for a moment.
            assert await cy.page.evaluate("window.formOffered") == []
            # Her microphone is still off, for her and for the others.
            await expect(cy.page.locator("#mic-button")).to_have_attribute("aria-pressed", "true")
            # Ada sees her back on the same tile, never told she left.
            await expect(cy_tile).to_have_count(1)
            await expect(cy_tile.locator(".tile-reconnecting")).to_be_hidden()
            await expect(cy_tile).to_have_attribute("aria-label", re.compile(", muted"))
            left = [
                e
                for e in await events_since(ada.page, seq_before)
                if e[1] == "participant.left" and e[2] == cy_id
            ]
            assert left == [], left
            await expect(
                m.bob.page.locator(f'#stage .tile[data-participant="{cy_id}"] .tile-reconnecting')
            ).to_be_hidden()
            await cy.page.screenshot(path=str(ARTIFACTS / "reload-after-window-room.png"))
            assert cy.errors == [], cy.errors
            # She leaves (the node drops her media then, even a negotiation still under way).
            await cy.page.locator("#leave-button").click()
            await expect(cy.page.locator("#ended-title")).to_have_text("You left the meeting")
            await expect(cy_tile).to_have_count(0)
        finally:
            m.twin.local.set_clock_offset(0)
    finally:
        calls.hold.set()
        await leave_page(cy)
