"""The account pages, the host dashboard and the pre-join check in real Chromium (Debian's,
driven by Playwright) against the twin: sign up through the UI, schedule one-off and
recurring meetings, read their times in the viewer's zone, copy the invite link, download the
ICS, delete, sign out and in; the session surviving access-token expiry; the camera and
microphone check with Chromium's fake devices. Screenshots go to test-artifacts/: signin.png,
dashboard.png and prejoin.png (the join page's pre-join check; test_browser_room.py writes
join.png)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.integration.browser import ARTIFACTS, CHROMIUM_ARGS, MEDIA_ARGS, ROOT, axe_violations
from tests.integration.client import Api
from tests.integration.conftest import Twin

# Seven people share this machine's two cores: give page assertions room beyond the 5 s default.
expect.set_options(timeout=15_000)

VIEWER_ZONE = "America/New_York"


def _SENT_TO_SIGN_IN(url: str) -> bool:
    return url.endswith("/signin.html?next=%2Fdashboard.html")


PASSWORD = "correct horse battery staple"


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def _context(browser: Browser, twin: Twin) -> BrowserContext:
    context = await browser.new_context(
        base_url=twin.base_url,
        timezone_id=VIEWER_ZONE,
        locale="en-US",
        viewport={"width": 1280, "height": 900},
        accept_downloads=True,
    )
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=twin.base_url)
    return context


def _watch_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


async def _no_serious_axe(page: Page, what: str) -> None:
    violations = await axe_violations(page)
    assert not violations, f"{what}: {json.dumps(violations, indent=1)}"


def _plain(text: str) -> str:
    # ICU puts narrow and no-break spaces around AM/PM; compare with plain ones.
    return text.replace("\u202f", " ").replace("\u00a0", " ")


def _local_text(start_utc: str) -> tuple[str, str, str]:
    """What the dashboard must show for an instant, in VIEWER_ZONE: date, time, zone."""
    local = datetime.fromisoformat(start_utc.replace("Z", "+00:00")).astimezone(
        ZoneInfo(VIEWER_ZONE)
    )
    day = f"{local:%a}, {local:%b} {local.day}"
    clock = f"{local.hour % 12 or 12}:{local:%M} {'AM' if local.hour < 12 else 'PM'}"
    return day, clock, str(local.tzname())


async def _assert_times_shown(card: Any, meeting: dict[str, Any]) -> None:
    shown = 0
    for occurrence in meeting["next_occurrences"]:
        element = card.locator(f'time[datetime="{occurrence["start_utc"]}"]')
        if not await element.count():
            continue
        text = _plain(await element.inner_text())
        day, clock, zone = _local_text(occurrence["start_utc"])
        assert day in text and clock in text and zone in text, (
            f"{occurrence['start_utc']} shown as {text!r}, expected {day} {clock} {zone}"
        )
        shown += 1
    assert shown >= 1, f"no occurrence of {meeting['title']} shown"


async def _schedule(page: Page, fill: dict[str, Any]) -> dict[str, Any]:
    """Fill the schedule form and submit it; returns the API's answer to the POST."""
    form = page.locator("#schedule-form")
    await form.get_by_label("Title").fill(fill["title"])
    await form.get_by_label("Date", exact=True).fill(fill["date"])
    await form.get_by_label("Start time").fill(fill["time"])
    await form.get_by_label("Time zone").fill(fill["timezone"])
    await form.get_by_label("Duration").select_option(str(fill["duration"]))
    if "preview" in fill:  # what the chosen wall time is in the viewer's zone
        await expect(page.locator("#start-preview")).to_have_text(fill["preview"])
    await form.get_by_label("How often").select_option(fill.get("repeat", ""))
    for code in fill.get("weekdays", []):
        await form.locator(f"input[name=byday][value={code}]").check()
    if "interval" in fill:
        await form.get_by_label("Every", exact=True).fill(str(fill["interval"]))
    if "count" in fill:
        await form.get_by_label("Number of occurrences").fill(str(fill["count"]))
    if fill.get("never"):
        await form.get_by_label("Never", exact=True).check()
    if "until" in fill:
        await form.locator("input[name=ends][value=until]").check()
        await form.get_by_label("Last date").fill(fill["until"])
    if fill.get("kind") == "webinar":
        await form.get_by_label("Webinar").check()
    await form.get_by_label("Passcode").fill(fill.get("passcode", ""))
    if fill.get("waiting_room"):
        await form.get_by_label("Waiting room").check()
    async with page.expect_response(
        lambda r: r.url.endswith("/api/meetings") and r.request.method == "POST"
    ) as answer:
        await form.get_by_role("button", name="Schedule meeting").click()
    response = await answer.value
    assert response.status == 201, await response.text()
    meeting: dict[str, Any] = await response.json()
    return meeting


async def test_sign_up_schedule_invite_and_sign_back_in(
    twin: Twin, browser: Browser, tmp_path: Path
) -> None:
    context = await _context(browser, twin)
    page = await context.new_page()
    errors = _watch_errors(page)
    email = f"host-{uuid.uuid4().hex[:8]}@example.com"

    # A mistyped address: the app's own 404 page (status 404), with a way home.
    missing = await page.goto("/meetings/not-a-page")
    assert missing is not None and missing.status == 404
    await expect(page.get_by_role("heading", name="This page does not exist")).to_be_visible()
    await expect(page).to_have_title("Page not found · Townhall")
    await page.screenshot(path=str(ARTIFACTS / "not-found.png"))
    await _no_serious_axe(page, "404 page")
    await page.get_by_role("link", name="Go to the home page").click()
    await page.wait_for_url(twin.base_url + "/")

    # Landing: join by link or ID refuses what is not one, and offers sign-up. Every page
    # links the SVG favicon, which is served as SVG.
    await _no_serious_axe(page, "index")
    icon = await page.locator('link[rel="icon"]').get_attribute("href")
    assert icon == "/favicon.svg"
    favicon = await page.request.get(icon)
    assert favicon.status == 200 and favicon.headers["content-type"] == "image/svg+xml"
    assert (await favicon.text()).startswith("<svg")
    for name in ("dashboard", "join", "signin", "summary", "404"):
        html = (ROOT / "web" / f"{name}.html").read_text()
        assert '<link rel="icon" href="/favicon.svg" type="image/svg+xml">' in html, name
    await page.get_by_label("Meeting link or ID").fill("not a meeting!")
    await page.get_by_role("button", name="Continue").click()
    await expect(page.locator("#meeting-error")).to_contain_text("doesn't look like")
    await page.get_by_role("link", name="Create account").first.click()

    # Sign up through the form.
    await expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    signup = page.locator("#signup-form")
    await signup.get_by_label("Your name").fill("Grace Hopper")
    await signup.get_by_label("Email").fill(email)
    await signup.get_by_label("Password").fill(PASSWORD)
    await page.screenshot(path=str(ARTIFACTS / "signin.png"))
    await _no_serious_axe(page, "sign-in")
    await page.get_by_role("button", name="Create account").click()
    await page.wait_for_url("**/dashboard.html")
    await expect(page.locator("#account-name")).to_contain_text("Grace Hopper")
    await expect(page.locator("#list-status")).to_contain_text("No upcoming meetings")

    # Bad input: a clear message, and nothing is created.
    await page.locator("#schedule-form").get_by_label("Title").fill("")
    await page.get_by_role("button", name="Schedule meeting").click()
    await expect(page.locator("#schedule-error")).to_have_text("Give the meeting a title.")
    await expect(page.locator("li.meeting")).to_have_count(0)

    # The time zone is searched by typing: the viewer's zone first, current names only (no
    # Asia/Calcutta or Europe/Kiev), and an old name typed in becomes the current one.
    zone = page.locator("#schedule-form").get_by_label("Time zone")
    await expect(zone).to_have_value(VIEWER_ZONE)
    listed = await page.locator("#timezone-list option").evaluate_all(
        "options => options.map(o => o.value)"
    )
    assert listed[:2] == [VIEWER_ZONE, "UTC"] and len(listed) > 300, listed[:5]
    assert {"Asia/Kolkata", "Europe/Kyiv", "Europe/Paris"} <= set(listed)
    assert not {"Asia/Calcutta", "Europe/Kiev", "Asia/Saigon"} & set(listed)
    assert listed[2:] == sorted(listed[2:])
    await zone.fill("europe/kiev")
    await zone.press("Tab")
    await expect(zone).to_have_value("Europe/Kyiv")
    await zone.fill("Mars/Olympus_Mons")
    await zone.press("Tab")
    await expect(zone).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#timezone-error")).to_contain_text("No time zone has that name")
    await page.screenshot(path=str(ARTIFACTS / "dashboard-timezone.png"))

    # A one-off meeting set in Paris (typed as it comes), seen from New York (before the US
    # DST change).
    one_off = await _schedule(
        page,
        {
            "title": "Board review",
            "date": "2027-03-10",
            "time": "14:30",
            "timezone": "paris",
            "duration": 90,
            "preview": re.compile(r"^That's Wed, Mar 10, 2027, 8:30\sAM EST for you\.$"),
        },
    )
    assert one_off["next_occurrences"][0]["start_utc"] == "2027-03-10T13:30:00Z"
    assert one_off["timezone"] == "Europe/Paris"
    await expect(page.locator("#start-preview")).to_have_text("")  # the form reset to NY
    card = page.locator(f'li[data-meeting-id="{one_off["meeting_id"]}"]')
    await expect(card).to_contain_text("8:30")
    await _assert_times_shown(card, one_off)
    await expect(card).to_contain_text("scheduled in Europe/Paris")

    # A recurring webinar with passcode and waiting room.
    weekly = await _schedule(
        page,
        {
            "title": "Weekly sync",
            "date": "2027-01-04",
            "time": "09:00",
            "timezone": "America/Los_Angeles",
            "duration": 45,
            "repeat": "WEEKLY",
            "weekdays": ["MO", "WE"],
            "count": 6,
            "kind": "webinar",
            "passcode": "4242",
            "waiting_room": True,
        },
    )
    assert weekly["rrule"] == "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=6"
    assert (weekly["passcode"], weekly["waiting_room"], weekly["kind"]) == ("4242", True, "webinar")
    weekly_card = page.locator(f'li[data-meeting-id="{weekly["meeting_id"]}"]')
    await expect(weekly_card.locator(".badges")).to_contain_text("Webinar")
    await expect(weekly_card.locator(".badges")).to_contain_text("Waiting room")
    await expect(weekly_card).to_contain_text("Every week on Monday and Wednesday, 6 times")
    await expect(weekly_card.locator("time")).to_have_count(5)
    await _assert_times_shown(weekly_card, weekly)

    # Daily until a date: UNTIL is the end of that day in the meeting's zone, in UTC.
    daily = await _schedule(
        page,
        {
            "title": "Launch week",
            "date": "2027-06-01",
            "time": "08:00",
            "timezone": "Asia/Tokyo",
            "duration": 30,
            "repeat": "DAILY",
            "until": "2027-06-05",
        },
    )
    assert daily["rrule"] == "FREQ=DAILY;UNTIL=20270605T145959Z"
    # The form started from its defaults again: no webinar, passcode or waiting room carried over.
    assert (daily["kind"], daily["passcode"], daily["waiting_room"]) == ("meeting", None, False)
    assert len(daily["next_occurrences"]) == 5

    # Every other month, with no end; the form describes the rule before it is sent.
    monthly = await _schedule(
        page,
        {
            "title": "All hands",
            "date": "2027-02-15",
            "time": "17:00",
            "timezone": VIEWER_ZONE,
            "duration": 60,
            "repeat": "MONTHLY",
            "interval": 2,
            "never": True,
        },
    )
    assert monthly["rrule"] == "FREQ=MONTHLY;INTERVAL=2"
    assert [o["start_utc"] for o in monthly["next_occurrences"][:2]] == [
        "2027-02-15T22:00:00Z",
        "2027-04-15T21:00:00Z",  # EDT by then: the wall time stays at 17:00
    ]
    await expect(page.locator(f'li[data-meeting-id="{monthly["meeting_id"]}"]')).to_contain_text(
        "Every 2 months"
    )

    # The list as the API gives it after a reload: sorted, times still in New York.
    await page.reload()
    await expect(page.locator("li.meeting")).to_have_count(4)
    ids = await page.locator("li.meeting").evaluate_all("els => els.map(e => e.dataset.meetingId)")
    assert ids == [m["meeting_id"] for m in (weekly, monthly, one_off, daily)]
    await _assert_times_shown(weekly_card, weekly)

    # Copy the invite link: the clipboard holds the join URL, and the page says so.
    await weekly_card.get_by_role("button", name="Copy invite link").click()
    await expect(page.locator("#toasts")).to_contain_text("Invite link copied")
    assert await page.evaluate("navigator.clipboard.readText()") == weekly["join_url"]

    # Download the ICS and read it as a calendar would.
    async with page.expect_download() as download_info:
        await weekly_card.get_by_role("button", name="Download invite").click()
    download = await download_info.value
    assert download.suggested_filename == f"townhall-{weekly['meeting_id']}.ics"
    saved = tmp_path / "invite.ics"
    await download.save_as(saved)
    event = icalendar.Calendar.from_ical(saved.read_bytes()).walk("VEVENT")[0]
    start = event.decoded("DTSTART")
    assert start == datetime(2027, 1, 4, 9, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    assert start.astimezone(UTC) == datetime(2027, 1, 4, 17, 0, tzinfo=UTC)
    rule = event["RRULE"]
    assert isinstance(rule, icalendar.vRecur)
    assert (rule["FREQ"], rule["BYDAY"], rule["COUNT"]) == (["WEEKLY"], ["MO", "WE"], [6])
    assert weekly["join_url"] in str(event["DESCRIPTION"])

    # Edit: the form comes back filled in from the meeting; saving replaces it (PUT).
    await weekly_card.get_by_role("button", name="Edit", exact=True).click()
    form = page.locator("#schedule-form")
    await expect(page.locator("#schedule-title")).to_have_text("Edit “Weekly sync”")
    await expect(form.get_by_label("Title")).to_have_value("Weekly sync")
    await expect(form.get_by_label("Time zone")).to_have_value("America/Los_Angeles")
    await expect(form.get_by_label("Start time")).to_have_value("09:00")
    await expect(form.get_by_label("Number of occurrences")).to_have_value("6")
    checked = await form.locator("input[name=byday]:checked").evaluate_all(
        "els => els.map(e => e.value)"
    )
    assert checked == ["MO", "WE"]
    await expect(form.get_by_label("Webinar")).to_be_checked()
    await expect(form.get_by_label("Passcode")).to_have_value("4242")
    await expect(form.get_by_label("Waiting room")).to_be_checked()
    await form.get_by_label("Title").fill("Weekly sync (moved)")
    await form.get_by_label("Start time").fill("10:30")
    async with page.expect_response(
        lambda r: (
            r.url.endswith(f"/api/meetings/{weekly['meeting_id']}") and r.request.method == "PUT"
        )
    ) as answer:
        await form.get_by_role("button", name="Save changes").click()
    saved_meeting = await (await answer.value).json()
    assert (saved_meeting["start"], saved_meeting["rrule"], saved_meeting["passcode"]) == (
        "2027-01-04T10:30",
        "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=6",
        "4242",
    )
    await expect(weekly_card.locator(".meeting-title")).to_have_text("Weekly sync (moved)")
    await _assert_times_shown(weekly_card, saved_meeting)
    await expect(page.locator("#schedule-title")).to_have_text("Schedule a meeting")
    await expect(form.get_by_label("Title")).to_have_value("")

    # An UNTIL rule comes back as the date in the meeting's zone; Cancel leaves it unchanged.
    daily_card = page.locator(f'li[data-meeting-id="{daily["meeting_id"]}"]')
    await daily_card.get_by_role("button", name="Edit", exact=True).click()
    await expect(form.get_by_label("Last date")).to_have_value("2027-06-05")
    await expect(form.locator("input[name=ends][value=until]")).to_be_checked()
    await form.get_by_role("button", name="Cancel").click()
    await expect(page.locator("#schedule-title")).to_have_text("Schedule a meeting")
    await expect(daily_card.get_by_role("button", name="Edit", exact=True)).to_be_focused()

    await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    await _no_serious_axe(page, "dashboard")

    # Delete the one-off, with a confirmation step.
    await card.get_by_role("button", name="Delete", exact=True).click()
    await card.get_by_role("button", name="Yes, delete").click()
    await expect(card).to_have_count(0)
    await expect(page.locator("li.meeting")).to_have_count(3)
    gone = await page.evaluate(
        """async (id) => {
          const { api } = await import('/api.js');
          try { await api(`/api/meetings/${id}`); return 'still there'; }
          catch (error) { return `${error.status} ${error.code}`; }
        }""",
        one_off["meeting_id"],
    )
    assert gone == "404 not_found"

    # Sign out: the refresh token is revoked and the dashboard sends people to sign in.
    refresh_token = await page.evaluate("localStorage.getItem('townhall.refresh')")
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(twin.base_url + "/")
    await expect(page.get_by_role("link", name="Sign in").first).to_be_visible()
    assert await page.evaluate("localStorage.getItem('townhall.refresh')") is None
    async with httpx.AsyncClient(base_url=twin.base_url) as http:
        spent = await http.post("/api/auth/refresh", json={"refresh_token": refresh_token})
    assert spent.status_code == 401
    await page.goto("/dashboard.html")
    await page.wait_for_url(_SENT_TO_SIGN_IN)

    # A wrong password is refused with the API's message; the right one gets back in.
    signin = page.locator("#signin-form")
    await signin.get_by_label("Email").fill(email)
    await signin.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#signin-error")).to_have_text("wrong email or password")
    await signin.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/dashboard.html")
    await expect(page.locator("li.meeting")).to_have_count(3)

    # The landing page takes a pasted invite link (or ID) to that meeting's join page.
    await page.goto("/")
    await expect(page.get_by_role("link", name="Your meetings", exact=True)).to_be_visible()
    await page.get_by_label("Meeting link or ID").fill("zzzz-zzzz-zz")
    await page.get_by_role("button", name="Continue").click()
    await expect(page.locator("#meeting-error")).to_contain_text("No meeting has the ID")
    await page.get_by_label("Meeting link or ID").fill(f"  {weekly['join_url']} ")
    await page.get_by_role("button", name="Continue").click()
    await page.wait_for_url(f"**/join.html?m={weekly['meeting_id']}")
    assert errors == []

    # Seen from India, whose zone Chromium still calls Asia/Calcutta: the form offers the
    # viewer's zone first, by its current name.
    refresh_token = await page.evaluate("localStorage.getItem('townhall.refresh')")
    await context.close()
    context = await browser.new_context(base_url=twin.base_url, timezone_id="Asia/Kolkata")
    await context.add_init_script(f"localStorage.setItem('townhall.refresh', {refresh_token!r});")
    page = await context.new_page()
    await page.goto("/dashboard.html")
    await expect(page.locator("#zone-note")).to_have_text("Times in your time zone, Asia/Kolkata.")
    await expect(page.get_by_label("Time zone")).to_have_value("Asia/Kolkata")
    first = page.locator("#timezone-list option").first
    await expect(first).to_have_attribute("value", "Asia/Kolkata")
    await context.close()


async def _sign_up_in_page(page: Page) -> None:
    await page.goto("/")
    await page.evaluate(
        """async ([email, password]) => {
          const { signUp } = await import('/api.js');
          await signUp(email, password, 'Refresh Tester');
        }""",
        [f"refresh-{uuid.uuid4().hex[:8]}@example.com", PASSWORD],
    )


async def _tokens(page: Page) -> tuple[str, str]:
    access = await page.evaluate("JSON.parse(sessionStorage.getItem('townhall.access')).token")
    refresh = await page.evaluate("localStorage.getItem('townhall.refresh')")
    return access, refresh


async def test_access_token_is_refreshed_before_it_expires(twin: Twin, browser: Browser) -> None:
    context = await _context(browser, twin)
    page = await context.new_page()
    await page.clock.install()
    await _sign_up_in_page(page)
    access, refresh = await _tokens(page)

    # 80% of the 15-minute lifetime is 12 minutes: nothing before, a refresh after.
    await page.clock.fast_forward("11:00")
    assert await _tokens(page) == (access, refresh)
    await page.clock.fast_forward("02:00")
    await page.wait_for_function(
        "t => JSON.parse(sessionStorage.getItem('townhall.access')).token !== t", arg=access
    )
    new_access, new_refresh = await _tokens(page)
    assert new_refresh != refresh  # rotated, as the API does

    # The old refresh token is spent once its reuse interval (30 s, for a response lost to a
    # navigation) has passed; the new access token works without a sign-in.
    twin.local.set_clock_offset(31)
    try:
        async with httpx.AsyncClient(base_url=twin.base_url) as http:
            assert (
                await http.post("/api/auth/refresh", json={"refresh_token": refresh})
            ).status_code == 401
            me = await http.get("/api/auth/me", headers={"Authorization": f"Bearer {new_access}"})
    finally:
        twin.local.set_clock_offset(0)
    assert me.status_code == 200
    # Another half hour passes (the page's clock); the next call still works, on its own.
    await page.clock.fast_forward("30:00")
    listed = await page.evaluate(
        "async () => (await import('/api.js')).api('/api/meetings').then(l => l.length)"
    )
    assert listed == 0
    assert await page.evaluate("(async () => (await import('/api.js')).isSignedIn())()")
    await context.close()


async def test_a_refused_access_token_is_refreshed_once_and_the_call_retried(
    twin: Twin, browser: Browser
) -> None:
    context = await _context(browser, twin)
    page = await context.new_page()
    await _sign_up_in_page(page)
    access, refresh = await _tokens(page)

    # A token the API refuses (its signature broken) while the page still believes in it.
    forged = access[:-6] + ("AAAAAA" if not access.endswith("AAAAAA") else "BBBBBB")
    await page.evaluate(
        """t => {
          const saved = JSON.parse(sessionStorage.getItem('townhall.access'));
          sessionStorage.setItem('townhall.access', JSON.stringify({...saved, token: t}));
        }""",
        forged,
    )
    await page.reload()
    statuses: list[tuple[str, int]] = []
    page.on(
        "response",
        lambda r: (
            statuses.append((r.url.split("/api/")[-1], r.status)) if "/api/" in r.url else None
        ),
    )
    me = await page.evaluate("async () => (await import('/api.js')).api('/api/auth/me')")
    assert me["name"] == "Refresh Tester"
    assert statuses == [("auth/me", 401), ("auth/refresh", 200), ("auth/me", 200)]
    assert (await _tokens(page))[1] != refresh

    # A new tab has no access token (sessionStorage is per tab): the shared refresh token
    # gets it one, and the account is read from /me.
    tab = await context.new_page()
    await tab.goto("/dashboard.html")
    await expect(tab.locator("#account-name")).to_contain_text("Refresh Tester")
    await expect(tab.locator("#list-status")).to_contain_text("No upcoming meetings")
    await tab.close()

    # When the refresh token is spent elsewhere too (and its reuse interval is over), the page
    # signs out instead of looping.
    _, current = await _tokens(page)
    async with httpx.AsyncClient(base_url=twin.base_url) as http:
        assert (
            await http.post("/api/auth/refresh", json={"refresh_token": current})
        ).status_code == 200
    twin.local.set_clock_offset(31)
    try:
        await page.evaluate(
            """t => {
              const saved = JSON.parse(sessionStorage.getItem('townhall.access'));
              sessionStorage.setItem('townhall.access', JSON.stringify({...saved, token: t}));
            }""",
            forged,
        )
        await page.goto("/dashboard.html")
        await page.wait_for_url(_SENT_TO_SIGN_IN)
        assert await page.evaluate("localStorage.getItem('townhall.refresh')") is None
    finally:
        twin.local.set_clock_offset(0)
    await context.close()


# -- the pre-join check ------------------------------------------------------------------------


async def _meeting(twin: Twin) -> dict[str, Any]:
    host = Api(twin.base_url)
    try:
        await host.sign_up(f"prejoin-{uuid.uuid4().hex[:6]}@example.com")
        start = datetime.combine(date.today() + timedelta(days=1), time(10, 0))
        meeting: dict[str, Any] = await host.create_meeting(
            title="Pre-join check", start=start.isoformat(timespec="minutes"), timezone="UTC"
        )
    finally:
        await host.close()
    return meeting


async def _meter_peak(page: Page, selector: str, samples: int = 40) -> int:
    peak = 0
    for _ in range(samples):  # ~4 s: Chromium's fake microphone beeps about once a second
        peak = max(peak, int(await page.locator(selector).get_attribute("aria-valuenow") or 0))
        if peak > 0:
            break
        await page.wait_for_timeout(100)
    return peak


@pytest.fixture
async def media_browser(chromium: str) -> AsyncIterator[Browser]:
    """Chromium with fake camera and microphone, and permission prompts accepted."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, args=MEDIA_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def test_join_page_checks_camera_and_microphone_before_joining(
    twin: Twin, media_browser: Browser
) -> None:
    meeting = await _meeting(twin)
    page = await (await media_browser.new_context(base_url=twin.base_url)).new_page()
    errors = _watch_errors(page)
    await page.goto(meeting["join_url"])
    check = page.locator("#prejoin .prejoin-check")
    await expect(check).to_be_visible()
    await page.wait_for_function(
        "document.querySelector('#prejoin .prejoin-check video')?.videoWidth > 0", timeout=15_000
    )
    meter = "#prejoin [role=meter]"
    assert await _meter_peak(page, meter) > 0

    mics = check.get_by_label("Microphone", exact=True)
    cameras = check.get_by_label("Camera", exact=True)
    mic_names = await mics.locator("option").all_inner_texts()
    assert "Fake Default Audio Input" in mic_names and len(mic_names) >= 2
    assert (await cameras.locator("option").first.inner_text()).startswith("fake_device")

    # Toggles: aria-pressed, the meter, the preview and the track behind it.
    mic = check.get_by_role("button", name="Microphone")
    camera = check.get_by_role("button", name="Camera")
    await expect(mic).to_have_attribute("aria-pressed", "true")
    await mic.click()
    await expect(mic).to_have_attribute("aria-pressed", "false")
    await expect(check.locator("[role=meter]")).to_have_attribute("aria-valuenow", "0")
    await page.wait_for_timeout(500)  # the fake microphone keeps beeping: the meter must not
    await expect(check.locator("[role=meter]")).to_have_attribute("aria-valuenow", "0")
    await mic.click()
    await expect(mic).to_have_attribute("aria-pressed", "true")
    assert await _meter_peak(page, meter) > 0

    await camera.click()
    await expect(camera).to_have_attribute("aria-pressed", "false")
    await expect(check.locator("video")).to_be_hidden()
    await expect(check.get_by_text("Camera is off")).to_be_visible()
    assert (
        await page.evaluate(
            "document.querySelector('#prejoin video').srcObject.getVideoTracks()[0].enabled"
        )
        is False
    )
    await camera.click()
    await expect(check.locator("video")).to_be_visible()

    # Another microphone: the picker switches the track and the meter follows the new one.
    other = next(n for n in mic_names if n != "Fake Default Audio Input")
    await mics.select_option(label=other)
    await expect(mics.locator("option:checked")).to_have_text(other)
    assert await _meter_peak(page, meter) > 0

    # The test chime plays (through Web Audio) and the button comes back.
    sound = check.locator(".prejoin-test-sound")
    await expect(sound).to_have_text("Play test sound")
    await sound.click()
    await expect(sound).to_have_text("Playing…")
    await expect(sound).to_have_text("Play test sound")
    await expect(check.get_by_role("status")).not_to_contain_text("could not play")

    await page.screenshot(path=str(ARTIFACTS / "prejoin.png"), full_page=True)
    await _no_serious_axe(page, "join page with the pre-join check")
    assert errors == []


async def test_prejoin_module_hands_its_tracks_to_the_room(
    twin: Twin, media_browser: Browser
) -> None:
    page = await (await media_browser.new_context(base_url=twin.base_url)).new_page()
    await page.goto("/")
    # The module on its own, in a real page of the app: its getters and the hand-over.
    result = await page.evaluate(
        """async () => {
          const { PreJoinCheck } = await import('/prejoin.js');
          const root = document.createElement('section');
          document.querySelector('main').prepend(root);
          const check = new PreJoinCheck(root);
          await check.start();
          const seen = {
            kinds: check.stream.getTracks().map(t => t.kind).sort(),
            on: [check.micOn, check.cameraOn],
            ids: [Boolean(check.audioDeviceId), Boolean(check.videoDeviceId)],
          };
          root.querySelector('button').click();  // the microphone toggle
          seen.muted = [check.micOn, check.stream.getAudioTracks()[0].enabled];
          const handed = check.stop({ keepTracks: true });
          seen.handed = handed.getTracks().map(t => t.readyState);
          seen.previewCleared = root.querySelector('video').srcObject === null;
          handed.getTracks().forEach(t => t.stop());

          const again = new PreJoinCheck(root);
          await again.start();
          const tracks = again.stream.getTracks();
          seen.rememberedMicOff = again.micOn === false;
          again.stop();
          seen.stopped = tracks.map(t => t.readyState);
          return seen;
        }"""
    )
    assert result == {
        "kinds": ["audio", "video"],
        "on": [True, True],
        "ids": [True, True],
        "muted": [False, False],
        "handed": ["live", "live"],
        "previewCleared": True,
        "rememberedMicOff": True,
        "stopped": ["ended", "ended"],
    }


async def test_prejoin_check_without_permission_lets_you_join_without_devices(
    twin: Twin, chromium: str
) -> None:
    meeting = await _meeting(twin)
    async with async_playwright() as playwright:
        # Fake devices but no auto-accepting prompt: Playwright denies what it was not granted.
        args = [a for a in MEDIA_ARGS if a != "--use-fake-ui-for-media-stream"]
        browser = await playwright.chromium.launch(executable_path=chromium, args=args)
        try:
            page = await (await browser.new_context(base_url=twin.base_url)).new_page()
            await page.goto(meeting["join_url"])
            panel = page.locator("#prejoin .prejoin-check")
            status = panel.get_by_role("status")
            await expect(status).to_contain_text("isn't allowed")
            await expect(status).to_contain_text("join without them")
            await expect(panel.get_by_role("button", name="Try again")).to_be_visible()
            await expect(panel.get_by_role("button", name="Microphone")).to_be_disabled()
            await expect(panel.get_by_role("button", name="Camera")).to_be_disabled()
            await expect(panel.get_by_label("Microphone", exact=True)).to_be_disabled()
            await expect(panel.get_by_text("No camera")).to_be_visible()
            # Joining still works: the name form is there and the page does not block on media.
            await expect(page.get_by_role("button", name="Join")).to_be_enabled()
        finally:
            await browser.close()
