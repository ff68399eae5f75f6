"""A flaky network never loses a participant, and never says the wrong thing, in real Chromium
(issue 10: "A reload keeps you in", "A flaky network never loses you").

One twin (one SFU node), one browser and one meeting serve the module: Ada, the signed-in host,
and Bob, a guest, both with their cameras off (cheap on two shared cores). Bob's WebSocket goes
through a relay this test holds (`Relay`, Playwright's `route_web_socket`), which can stall it
the way a dead network does: frames held both ways, the socket not reset, and later delivered.
His `/rejoin` calls go through a route that can lose an answer after the server acted on it.

- a reload within the reconnect window keeps Bob: same participant, nobody saw him leave, his
  private messages are still there, his microphone still off;
- a stalled socket is shown within a few seconds (heartbeat) and recovers when released;
- a chat sent into a stall is shown "Sending…", never "not sent", and after the network comes
  back (its frame delivered late on the old socket, the page's retry on the new one with the
  same request id) it appears exactly once on every page;
- a lost answer to `/rejoin` (and a 503) is retried with the same token: same participant;
- the banner keeps "Reconnecting…" while a notice comes and goes;
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
from tests.integration.client import Api
from tests.integration.conftest import Twin, _start
from tests.integration.room_pages import Person, join, new_person, open_panel

pytestmark = pytest.mark.asyncio(loop_scope="module")

LOST = "Connection lost. Reconnecting…"
BACK = "Reconnected."
# The heartbeat (web/signaling.js): a ping after 4 s of silence, stalled if no pong in 3 s,
# checked every second: at most ~9 s from the last frame heard to the banner.
DETECT_WITHIN_S = 10.0


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
    info = await host_api.create_meeting(title="Flaky network")
    ada = await new_person(room_browser, "Ada", refresh_token=account["refresh_token"])
    bob = await new_person(room_browser, "Bob")
    await ada.context.add_init_script(devices(mic=False))
    await bob.context.add_init_script(devices(mic=True))
    relay = Relay()
    rejoins = RejoinRoute(relay)
    await bob.page.route_web_socket(re.compile(r"/ws\?"), relay.route)
    await bob.page.route("**/api/meetings/*/rejoin", rejoins.handle)
    await bob.page.route("**/api/meetings/*/join", rejoins.count_join)
    expect.set_options(timeout=15_000)
    try:
        await join(ada, info["join_url"])
        await join(bob, info["join_url"])
        yield Meeting(network_twin, info, ada, bob, relay, rejoins)
        for person in (ada, bob):
            assert person.errors == [], person.errors
    finally:
        relay.release()
        expect.set_options(timeout=5_000)
        for person in (ada, bob):
            await person.context.close()
        await host_api.close()


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
    # Silently: nothing on the banner of the page that came back.
    assert await banner_log(bob.page) == []


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
    await bob.page.wait_for_timeout(1500)  # still down: the page keeps saying so
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
    """The banner module (web/room/banner.js) in the page, on an element of its own: a notice
    shows beside "Reconnecting…", and when it goes "Reconnecting…" is still there."""
    lines = await meeting.bob.page.evaluate(
        """async ([lost, back]) => {
          const { Banner } = await import('/room/banner.js');
          const root = document.createElement('div');
          root.hidden = true;
          document.body.append(root);
          const banner = new Banner(root, () => {});
          const seen = () => root.hidden ? [] : [...root.children].map((l) => l.textContent);
          const wait = (ms) => new Promise((r) => setTimeout(r, ms));
          const out = {};
          banner.show(lost, { kind: 'warning' });
          banner.show('Message not sent: no', { kind: 'error', for: 200 });
          out.both = seen();
          await wait(400);
          out.after = seen();
          banner.show(back, { kind: 'ok', for: 200 });
          out.back = seen();
          await wait(400);
          out.end = seen();
          root.remove();
          return out;
        }""",
        [LOST, BACK],
    )
    assert lines == {
        "both": [LOST, "Message not sent: no"],
        "after": [LOST],
        "back": [BACK],
        "end": [],
    }, lines


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
        await ada.page.wait_for_timeout(3000)  # past a few back-off steps
    finally:
        await ada.context.set_offline(False)
    back = time.monotonic()
    await recovered_after(ada.page, start, 4)  # the `online` event ends the wait at once
    print(f"reconnected {time.monotonic() - back:.1f} s after the network came back")
    assert await ada.participant_id() == ada_id
    await expect(m.bob.page.locator(f'#stage .tile[data-participant="{ada_id}"]')).to_have_count(1)
