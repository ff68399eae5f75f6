"""The partner API (docs/partners.md) over the real twin: an owner makes a key, a partner
script schedules with it, hands out join links, people join over real sockets, the partner
ends the session and pages through the attendance. Then every way in that must be refused
is refused, and changes nothing: forged, revoked and under-scoped keys, another
organisation's ids in every path, a key in the query string, a full rate window."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import httpx
import pytest
from playwright.async_api import async_playwright, expect

from tests.integration.browser import MEDIA_ARGS
from tests.integration.client import Api, SignalingClient
from tests.integration.conftest import Twin

PARTNER_SCOPES = ["meetings:read", "meetings:write", "sessions:read"]
ATTENDEES = ["Ada", "Bea", "Cy", "Dov", "Eli"]


async def _owner(twin: Twin, name: str = "Hana Host") -> Api:
    owner = Api(twin.base_url)
    await owner.sign_up(f"owner-{secrets.token_hex(4)}@example.com", name)
    return owner


async def _key(owner: Api, scopes: list[str], rate: int = 50, name: str = "partner") -> str:
    response = await owner.post(
        "/api/v1/keys", {"name": name, "scopes": scopes, "rate_per_second": rate}
    )
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    assert key.startswith("thk_")
    return key


def _partner(twin: Twin, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=twin.base_url, headers={"authorization": f"Bearer {key}"}, timeout=15
    )


async def _pages(client: httpx.AsyncClient, path: str, limit: int) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    for _ in range(50):
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await client.get(path, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("the list never ended")


def _meeting_body(**fields: Any) -> dict[str, Any]:
    return {
        "title": "Partner webinar",
        "start": "2026-12-01T09:00",
        "timezone": "Europe/Paris",
        "duration_minutes": 45,
        **fields,
    }


async def test_a_partner_schedules_hands_out_links_ends_and_pages_attendance(twin: Twin) -> None:
    owner = await _owner(twin)
    org = (await owner.get("/api/v1/organisation")).json()
    assert org["your_role"] == "owner" and org["org_id"].startswith("o_")
    key = await _key(owner, PARTNER_SCOPES)
    listed = (await owner.get("/api/v1/keys")).json()
    prefix, secret = key[:20], key[21:]  # thk_<16-character id>_<secret>
    assert [k["prefix"] for k in listed["items"]] == [prefix]
    assert secret not in str(listed)  # the secret is shown once, never again

    async with _partner(twin, key) as partner:
        # Sent twice with one Idempotency-Key (a retry after a timeout): one meeting.
        once = {"idempotency-key": f"partner-{secrets.token_hex(8)}"}
        body = _meeting_body(passcode="4321")
        created = await partner.post("/api/v1/meetings", json=body, headers=once)
        assert created.status_code == 201, created.text
        mid = created.json()["meeting_id"]
        again = await partner.post("/api/v1/meetings", json=body, headers=once)
        assert again.status_code == 201 and again.json()["meeting_id"] == mid
        listed = (await partner.get("/api/v1/meetings")).json()["items"]
        assert [m["meeting_id"] for m in listed] == [mid]
        links = []
        for name in ATTENDEES:
            link = await partner.post(
                f"/api/v1/meetings/{mid}/join-links", json={"display_name": name}
            )
            assert link.status_code == 201, link.text
            assert f"join.html?m={mid}#invite=" in link.json()["join_url"]
            links.append(link.json()["invite"])

        # The key's creator hosts; each invited person joins under the link's name, without
        # the passcode, over a real socket.
        host = await SignalingClient.enter(twin.ws_url, await owner.join(mid, "Hana Host"))
        await host.ok("join")
        people = []
        guest = Api(twin.base_url)
        for invite in links:
            grant = await guest.post(f"/api/meetings/{mid}/join", {"invite": invite})
            assert grant.status_code == 200, grant.text
            client = await SignalingClient.enter(twin.ws_url, grant.json())
            await client.ok("join")
            people.append(client)
        assert [p.name for p in people] == ATTENDEES
        # The same link again is the same participant.
        again = await guest.post(f"/api/meetings/{mid}/join", {"invite": links[0]})
        assert again.json()["participant_id"] == people[0].participant_id
        await people[1].ok("chat", {"text": "hello from Bea"})

        sessions = (await partner.get(f"/api/v1/meetings/{mid}/sessions")).json()["items"]
        assert len(sessions) == 1 and sessions[0]["live"]
        sid = sessions[0]["session_id"]
        ended = await partner.post(f"/api/v1/meetings/{mid}/sessions/{sid}/end")
        assert ended.status_code == 200, ended.text
        assert ended.json()["live"] is False and ended.json()["ended_at"]
        for client in [host, *people]:
            event = await client.wait_event("meeting.ended")
            assert event["data"]["by"] == "api"
            await asyncio.wait_for(client.closed, 10)
        again_end = await partner.post(f"/api/v1/meetings/{mid}/sessions/{sid}/end")
        assert again_end.status_code == 409, again_end.text

        pages = await _pages(partner, f"/api/v1/meetings/{mid}/sessions/{sid}/attendance", 2)
        assert [len(p) for p in pages] == [2, 2, 2]
        names = [entry["name"] for page in pages for entry in page]
        assert names == ["Hana Host", *ATTENDEES]  # by first arrival, each once
        assert all(e["intervals"][0]["left_at"] for page in pages for e in page)
        chat = (await partner.get(f"/api/v1/meetings/{mid}/sessions/{sid}/chat")).json()
        assert [line["text"] for line in chat["items"]] == ["hello from Bea"]

        # Cursors: forged, or another list's, are refused cleanly.
        first = (
            await partner.get(
                f"/api/v1/meetings/{mid}/sessions/{sid}/attendance", params={"limit": 2}
            )
        ).json()
        for path, cursor in [
            (f"/api/v1/meetings/{mid}/sessions/{sid}/attendance", "not-a-cursor"),
            (f"/api/v1/meetings/{mid}/sessions/{sid}/attendance", first["next_cursor"][:-3]),
            (f"/api/v1/meetings/{mid}/sessions/{sid}/chat", first["next_cursor"]),
            ("/api/v1/meetings", first["next_cursor"]),
            (f"/api/v1/meetings/{mid}/registrants", first["next_cursor"]),
        ]:
            refused = await partner.get(path, params={"cursor": cursor})
            assert refused.status_code == 422, (path, refused.text)
            assert refused.json()["error"]["message"].startswith("cursor is not valid")
    for client in [host, *people]:
        await client.close()
    await guest.close()
    await owner.close()


async def test_the_organisation_meetings_list_pages_across_members(twin: Twin) -> None:
    owner = await _owner(twin)
    colleague = await _owner(twin, "Colleague")
    me = (await colleague.get("/api/auth/me")).json()
    added = await owner.post(
        "/api/v1/organisation/members", {"email": me["email"], "role": "member"}
    )
    assert added.status_code == 201, added.text
    # A member may not manage keys or members.
    refused = await colleague.post("/api/v1/keys", {"name": "x", "scopes": ["meetings:read"]})
    assert refused.status_code == 403, refused.text
    created = [(await owner.create_meeting(title=f"Owner {n}"))["meeting_id"] for n in range(3)]
    created += [
        (await colleague.create_meeting(title=f"Colleague {n}"))["meeting_id"] for n in range(4)
    ]
    key = await _key(owner, ["meetings:read"])
    async with _partner(twin, key) as partner:
        pages = await _pages(partner, "/api/v1/meetings", 3)
    listed = [m["meeting_id"] for page in pages for m in page]
    assert sorted(listed) == sorted(created) and len(listed) == len(set(listed))
    members = (await colleague.get("/api/v1/organisation/members")).json()["items"]
    assert sorted(m["role"] for m in members) == ["member", "owner"]
    await owner.close()
    await colleague.close()


async def _snapshot(owner: Api, mid: str) -> dict[str, Any]:
    meeting = (await owner.get(f"/api/meetings/{mid}")).json()
    meeting.pop("next_occurrences", None)
    return meeting


async def test_refusals_change_nothing(twin: Twin) -> None:
    ours, theirs = await _owner(twin, "Ours"), await _owner(twin, "Theirs")
    key = await _key(ours, PARTNER_SCOPES)
    their_mid = (await theirs.create_meeting(title="Theirs"))["meeting_id"]
    our_mid = (await ours.create_meeting(title="Ours"))["meeting_id"]
    # A session of theirs, ended, so its id is real.
    host = await SignalingClient.enter(twin.ws_url, await theirs.join(their_mid, "Theirs"))
    await host.ok("join")
    their_sid = host.session_id
    await host.ok("end")
    await host.close()
    before = await _snapshot(theirs, their_mid)

    async with _partner(twin, key) as partner:
        # Another organisation's ids, in every path that takes one: 404, as for no such id.
        paths = [
            ("GET", f"/api/v1/meetings/{their_mid}", None),
            ("PUT", f"/api/v1/meetings/{their_mid}", _meeting_body(title="Hijacked")),
            ("DELETE", f"/api/v1/meetings/{their_mid}", None),
            ("POST", f"/api/v1/meetings/{their_mid}/join-links", {"display_name": "Mallory"}),
            ("GET", f"/api/v1/meetings/{their_mid}/registrants", None),
            ("GET", f"/api/v1/meetings/{their_mid}/sessions", None),
            ("GET", f"/api/v1/meetings/{their_mid}/sessions/{their_sid}", None),
            ("POST", f"/api/v1/meetings/{their_mid}/sessions/{their_sid}/end", None),
            *[
                ("GET", f"/api/v1/meetings/{their_mid}/sessions/{their_sid}/{part}", None)
                for part in ("attendance", "chat", "polls", "questions")
            ],
            # Their session under our meeting is no session of ours either.
            ("GET", f"/api/v1/meetings/{our_mid}/sessions/{their_sid}", None),
            ("GET", f"/api/v1/meetings/{our_mid}/sessions/{their_sid}/attendance", None),
            ("POST", f"/api/v1/meetings/{our_mid}/sessions/{their_sid}/end", None),
        ]
        for method, path, body in paths:
            response = await partner.request(method, path, json=body)
            assert response.status_code == 404, (method, path, response.text)
            assert response.json()["error"]["code"] == "not_found"
        # A join link of ours does not open their meeting.
        ours_link = await partner.post(
            f"/api/v1/meetings/{our_mid}/join-links", json={"display_name": "Mallory"}
        )
        wrong = await ours.post(
            f"/api/meetings/{their_mid}/join", {"invite": ours_link.json()["invite"]}
        )
        assert wrong.status_code == 401, wrong.text
        # Our key cannot revoke their keys either: "not found".
        their_key = await _key(theirs, ["meetings:read"])
        revoke = await ours.http.delete(
            f"/api/v1/keys/{their_key.split('_')[1]}",
            headers={"authorization": f"Bearer {ours.token}"},
        )
        assert revoke.status_code == 404, revoke.text
        async with _partner(twin, their_key) as them:
            assert (await them.get(f"/api/v1/meetings/{their_mid}")).status_code == 200

        # A key in the query string is refused before anything runs, even with a good header.
        count = len((await partner.get("/api/v1/meetings")).json()["items"])
        for params in ({"api_key": key}, {"cursor": key}, {"token": "x"}):
            leaked = await partner.post("/api/v1/meetings", params=params, json=_meeting_body())
            assert leaked.status_code == 400, leaked.text
            assert leaked.json()["error"]["code"] == "credential_in_url"
        assert len((await partner.get("/api/v1/meetings")).json()["items"]) == count
    assert await _snapshot(theirs, their_mid) == before

    # A key on the web app's own routes (access tokens only) is told where keys work.
    async with _partner(twin, key) as partner:
        response = await partner.get("/api/meetings")
        assert response.status_code == 401 and "/api/v1" in response.json()["error"]["message"]

    # Forged keys: garbage, the right id with a wrong secret, an unknown id.
    key_id = key.split("_")[1]
    for forged in ["thk_nonsense", f"thk_{key_id}_{'A' * 43}", f"thk_{'a' * 16}_{'B' * 43}"]:
        async with _partner(twin, forged) as forger:
            response = await forger.post("/api/v1/meetings", json=_meeting_body())
            assert response.status_code == 401, response.text
            assert "Retry-After" not in response.headers

    # Wrong scope: refused, nothing written.
    reader = await _key(ours, ["meetings:read"])
    async with _partner(twin, reader) as partner:
        for method, path, body in [
            ("POST", "/api/v1/meetings", _meeting_body()),
            ("PUT", f"/api/v1/meetings/{our_mid}", _meeting_body(title="Changed")),
            ("DELETE", f"/api/v1/meetings/{our_mid}", None),
            ("GET", f"/api/v1/meetings/{our_mid}/sessions", None),
            ("GET", f"/api/v1/meetings/{our_mid}/recordings", None),
            ("POST", "/api/v1/keys", {"name": "escalate", "scopes": ["meetings:write"]}),
        ]:
            response = await partner.request(method, path, json=body)
            assert response.status_code == 403, (method, path, response.text)
        assert len((await partner.get("/api/v1/meetings")).json()["items"]) == 1
    assert (await ours.get(f"/api/meetings/{our_mid}")).json()["title"] == "Ours"

    # Revoked: refused from the next request on; revoking again is harmless (the first time
    # stands).
    revoked_at = []
    for _ in range(2):
        revoke = await ours.http.delete(
            f"/api/v1/keys/{key_id}", headers={"authorization": f"Bearer {ours.token}"}
        )
        assert revoke.status_code == 204, revoke.text
        async with _partner(twin, key) as partner:
            assert (await partner.get("/api/v1/meetings")).status_code == 401
        keys = {k["key_id"]: k for k in (await ours.get("/api/v1/keys")).json()["items"]}
        assert keys[key_id]["last_used_at"]
        revoked_at.append(keys[key_id]["revoked_at"])
        await asyncio.sleep(1)
    assert revoked_at[0] and revoked_at[0] == revoked_at[1]
    await ours.close()
    await theirs.close()


async def test_a_key_over_its_rate_gets_429_with_retry_after(twin: Twin) -> None:
    owner = await _owner(twin)
    key = await _key(owner, ["meetings:read"], rate=1)
    async with _partner(twin, key) as partner:
        answers = await asyncio.gather(*(partner.get("/api/v1/meetings") for _ in range(4)))
    statuses = sorted(r.status_code for r in answers)
    # Four at once within at most two one-second windows of one request each.
    assert statuses.count(200) in (1, 2) and 429 in statuses, statuses
    limited = next(r for r in answers if r.status_code == 429)
    assert limited.headers["retry-after"] == "1"
    assert limited.json()["error"]["code"] == "rate_limited"
    # The key's last use was written once, not per request.
    listed = (await owner.get("/api/v1/keys")).json()["items"][0]
    await asyncio.sleep(1.1)
    async with _partner(twin, key) as partner:
        assert (await partner.get("/api/v1/meetings")).status_code == 200
    assert (await owner.get("/api/v1/keys")).json()["items"][0]["last_used_at"] == listed[
        "last_used_at"
    ]
    await owner.close()


@pytest.mark.parametrize("path", ["/api/v1/meetings", "/api/v1/organisation"])
async def test_no_credential_is_a_401_that_says_what_to_send(twin: Twin, path: str) -> None:
    async with httpx.AsyncClient(base_url=twin.base_url) as anonymous:
        response = await anonymous.get(path)
    assert response.status_code == 401
    assert "Authorization: Bearer" in response.json()["error"]["message"]


async def test_a_join_link_opens_in_the_browser_under_its_name(twin: Twin, chromium: str) -> None:
    """The join page reads the link's invite from the fragment: the name is the invite's and
    cannot be edited, no passcode is asked, and Join lets the person in."""
    owner = await _owner(twin)
    key = await _key(owner, ["meetings:write"])
    async with _partner(twin, key) as partner:
        body = _meeting_body(title="Linked", passcode="9876", allow_before_host=True)
        mid = (await partner.post("/api/v1/meetings", json=body)).json()["meeting_id"]
        link = await partner.post(
            f"/api/v1/meetings/{mid}/join-links", json={"display_name": "Zoë Linked"}
        )
    join_url = link.json()["join_url"]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=MEDIA_ARGS)
        try:
            page = await (await browser.new_context()).new_page()
            await page.goto(join_url)
            await expect(page.locator("#title")).to_have_text("Linked")
            await expect(page.locator("#name")).to_have_value("Zoë Linked")
            await expect(page.locator("#name")).not_to_be_editable()
            await expect(page.locator("#passcode-row")).to_be_hidden()
            await page.get_by_role("button", name="Join", exact=True).click()
            await expect(page.locator("#room")).to_be_visible(timeout=10_000)
        finally:
            await browser.close()
    await owner.close()
