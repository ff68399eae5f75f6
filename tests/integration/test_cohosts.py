"""Meeting co-hosts (issue 10: "Before a host or co-host starts the session, a guest waits in
a lobby"), over real HTTP and WebSockets against the twin.

The host lists co-hosts' account emails when scheduling or editing. Signed in as one of
them, a person may start the session (a webinar's too), is not asked for the passcode, and
joins as `cohost`; anyone else signed in is a guest. The list is read at each join, and bad
lists are refused with the project's error shape before anything is written.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx

from tests.integration.client import Api, SignalingClient, new_guest_key
from tests.integration.conftest import Twin

PASSCODE = "4321"


async def _account(twin: Twin, prefix: str, name: str) -> tuple[Api, dict[str, Any]]:
    api = Api(twin.base_url)
    session = await api.sign_up(f"{prefix}-{uuid.uuid4().hex[:8]}@example.com", name)
    return api, session


async def _ws(twin: Twin, grant: dict[str, Any]) -> tuple[SignalingClient, dict[str, Any]]:
    client = await SignalingClient.enter(twin.ws_url, grant)
    reply = await client.request("join")
    assert reply["type"] == "reply", reply
    return client, reply["data"]


def _assert_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code and body["error"]["message"], body
    message: str = body["error"]["message"]
    return message


def _guest_body(name: str, key: str, passcode: str | None = PASSCODE) -> dict[str, Any]:
    return {"display_name": name, "passcode": passcode, "guest_key": key}


async def test_a_cohost_starts_the_session_and_the_waiting_guest_is_let_in(twin: Twin) -> None:
    host, _ = await _account(twin, "host", "Hana Host")
    cohost, co = await _account(twin, "co", "Cora Cohost")
    other, _ = await _account(twin, "other", "Otto Other")
    meeting = await host.create_meeting(
        passcode=PASSCODE,
        waiting_room=True,
        cohosts=[co["email"].upper(), f"  {co['email']} "],  # normalized, kept once
    )
    mid = meeting["meeting_id"]
    assert meeting["cohosts"] == [co["email"]]
    guest = Api(twin.base_url)
    key = new_guest_key()

    # Before anyone of the host side starts it: the guest and a signed-in stranger wait.
    path = f"/api/meetings/{mid}/join"
    _assert_error(await guest.post(path, _guest_body("Gus", key)), 409, "not_started")
    _assert_error(await other.post(path, {"passcode": PASSCODE}), 409, "not_started")
    public = (await guest.get(f"/api/meetings/{mid}/public")).json()
    assert public["live"] is False and public["your_role"] is None
    # Who they are, as the join page asks: only with a token, and only for themselves.
    assert (await cohost.get(f"/api/meetings/{mid}/public")).json()["your_role"] == "cohost"
    assert (await host.get(f"/api/meetings/{mid}/public")).json()["your_role"] == "host"
    assert (await other.get(f"/api/meetings/{mid}/public")).json()["your_role"] is None
    forged = await guest.http.get(
        f"/api/meetings/{mid}/public", headers={"authorization": "Bearer not-a-token"}
    )
    assert forged.status_code == 200 and forged.json()["your_role"] is None  # a public page
    assert [i for i in twin.meeting_items(mid) if i["sk"].startswith("SESSION#")] == []

    # The guest waits in the lobby, polling the public page, as join.js does.
    async def wait_in_lobby() -> dict[str, Any]:
        for _ in range(100):
            answer = await guest.post(path, _guest_body("Gus", key))
            if answer.status_code == 200:
                grant: dict[str, Any] = answer.json()
                return grant
            assert answer.json()["error"]["code"] == "not_started", answer.text
            await asyncio.sleep(0.1)
        raise AssertionError("the guest was never let in")

    waiting = asyncio.create_task(wait_in_lobby())
    await asyncio.sleep(0.3)
    assert not waiting.done()

    # The co-host starts it: no name, no passcode, role cohost, straight in (no waiting room).
    started = await cohost.post(path, {})
    assert started.status_code == 200, started.text
    grant = started.json()
    assert grant["role"] == "cohost" and grant["name"] == "Cora Cohost"
    co_ws, snapshot = await _ws(twin, grant)
    assert snapshot["you"]["role"] == "cohost" and snapshot["you"]["status"] == "admitted"
    sessions = [i for i in twin.meeting_items(mid) if i["sk"].startswith("SESSION#")]
    assert [s["session_id"] for s in sessions] == [grant["session_id"]]
    assert sessions[0]["started_by"] == co["user_id"]

    # The guest who waited is let in: into the co-host's session, through the waiting room,
    # which the co-host runs.
    guest_grant = await asyncio.wait_for(waiting, 15)
    assert guest_grant["session_id"] == grant["session_id"] and guest_grant["role"] == "attendee"
    gus = await SignalingClient.enter(twin.ws_url, guest_grant)
    assert (await gus.ok("join"))["status"] == "waiting"
    await co_ws.wait_event("waiting.joined")
    await co_ws.ok("admit", {"participant_id": gus.participant_id})
    await gus.wait_event("you.admitted")

    # A signed-in stranger is a guest: the passcode, and role attendee.
    _assert_error(await other.post(path, {"passcode": "0000"}), 403, "forbidden")
    stranger = await other.post(path, {"passcode": PASSCODE})
    assert stranger.status_code == 200 and stranger.json()["role"] == "attendee", stranger.text

    # The co-host moderates but is not the host: it cannot end the session for all.
    await co_ws.ok("lock", {"locked": True})
    refused = await co_ws.request("end")
    assert refused["type"] == "error" and refused["error"]["code"] == "forbidden", refused
    # A lock keeps newcomers out, not the host side: the host gets in, as the host.
    host_grant = await host.join(mid, "Hana Host")
    assert host_grant["role"] == "host" and host_grant["session_id"] == grant["session_id"]
    host_ws, _ = await _ws(twin, host_grant)
    await host_ws.ok("end")
    for client in (co_ws, gus, host_ws):
        await client.close()
    for api in (host, cohost, other, guest):
        await api.close()


async def test_a_cohost_may_start_a_webinar_and_joins_a_running_one_without_the_passcode(
    twin: Twin,
) -> None:
    host, _ = await _account(twin, "host", "Hana Host")
    cohost, co = await _account(twin, "co", "Cora Cohost")
    webinar = await host.create_meeting(kind="webinar", passcode=PASSCODE, cohosts=[co["email"]])
    mid = webinar["meeting_id"]
    path = f"/api/meetings/{mid}/join"
    guest = Api(twin.base_url)
    _assert_error(await guest.post(path, _guest_body("Ann", new_guest_key())), 409, "not_started")
    # "Webinars never start without the host": without someone of the host side.
    started = await cohost.post(path, {"display_name": None, "passcode": None})
    assert started.status_code == 200 and started.json()["role"] == "cohost", started.text
    co_ws, snapshot = await _ws(twin, started.json())
    assert snapshot["you"]["role"] == "cohost"
    assert snapshot["meeting"]["kind"] == "webinar"
    # An attendee comes in with the passcode; the co-host never needed it.
    ann = await guest.post(path, _guest_body("Ann", new_guest_key()))
    assert ann.status_code == 200 and ann.json()["role"] == "attendee", ann.text
    await co_ws.close()

    # In a meeting the host started, a co-host joining is not asked the passcode either.
    meeting = await host.create_meeting(passcode=PASSCODE, cohosts=[co["email"]])
    host_ws, _ = await _ws(twin, await host.join(meeting["meeting_id"], "Hana Host"))
    joined = await cohost.post(f"/api/meetings/{meeting['meeting_id']}/join", {})
    assert joined.status_code == 200, joined.text
    assert joined.json()["role"] == "cohost"
    assert joined.json()["session_id"] == host_ws.session_id
    co2, snapshot = await _ws(twin, joined.json())
    assert snapshot["you"]["role"] == "cohost" and snapshot["you"]["status"] == "admitted"
    await host_ws.ok("end")
    for client in (host_ws, co2):
        await client.close()
    for api in (host, cohost, guest):
        await api.close()


async def test_removing_a_cohost_takes_effect_at_their_next_join(twin: Twin) -> None:
    host, _ = await _account(twin, "host", "Hana Host")
    cohost, co = await _account(twin, "co", "Cora Cohost")
    meeting = await host.create_meeting(passcode=PASSCODE, cohosts=[co["email"]])
    mid = meeting["meeting_id"]
    path = f"/api/meetings/{mid}/join"
    # Listed: the co-host starts a session, then leaves it (the last one: it ends).
    co_ws, _ = await _ws(twin, (await cohost.post(path, {})).json())
    await co_ws.ok("leave")
    await co_ws.close()
    assert (await host.get(f"/api/meetings/{mid}")).json()["live"] is False

    # The host takes them off the list.
    body = {
        "title": "Standup",
        "start": "2026-12-01T09:00",
        "timezone": "Europe/Paris",
        "duration_minutes": 30,
        "passcode": PASSCODE,
        "cohosts": [],
    }
    edited = await host.http.put(f"/api/meetings/{mid}", json=body, headers=host._headers())
    assert edited.status_code == 200 and edited.json()["cohosts"] == [], edited.text

    # Their next join: a guest's. No session: the lobby; no passcode: refused.
    _assert_error(await cohost.post(path, {"passcode": PASSCODE}), 409, "not_started")
    assert (await cohost.get(f"/api/meetings/{mid}/public")).json()["your_role"] is None
    host_ws, _ = await _ws(twin, await host.join(mid, "Hana Host"))
    _assert_error(await cohost.post(path, {}), 403, "forbidden")
    again = await cohost.post(path, {"passcode": PASSCODE})
    assert again.status_code == 200 and again.json()["role"] == "attendee", again.text

    # Listed again (the edit keeps the running session running): from the next join on.
    body["cohosts"] = [co["email"]]
    edited = await host.http.put(f"/api/meetings/{mid}", json=body, headers=host._headers())
    assert edited.status_code == 200 and edited.json()["live"] is True, edited.text
    await host_ws.ok("end")
    await host_ws.close()
    restarted = await cohost.post(path, {})
    assert restarted.status_code == 200 and restarted.json()["role"] == "cohost", restarted.text
    await host.close()
    await cohost.close()


async def test_bad_cohost_lists_are_refused_and_nothing_is_stored(twin: Twin) -> None:
    host, me = await _account(twin, "host", "Hana Host")
    good = {
        "title": "Standup",
        "start": "2026-12-01T09:00",
        "timezone": "Europe/Paris",
        "duration_minutes": 30,
    }
    meeting = await host.create_meeting(cohosts=["keep@example.com"])
    mid = meeting["meeting_id"]
    before_items = twin.meeting_items(mid)
    before_list = (await host.get("/api/meetings")).json()
    eleven = [f"p{i}@example.com" for i in range(11)]
    bad: list[tuple[Any, str]] = [
        (["not an email"], "cohosts[0]"),
        (["ok@example.com", "no-at-sign.example.com"], "cohosts[1]"),
        (["a@b"], "cohosts[0]"),
        (["two@@example.com"], "cohosts[0]"),
        (["tab\t@example.com"], "cohosts[0]"),
        (["zero\u200bwidth@example.com"], "cohosts[0]"),
        (["bell\x07@example.com"], "cohosts[0]"),
        ([""], "cohosts[0]"),
        (eleven, "cohosts"),
        ([me["email"]], "your own"),
        ([me["email"].upper()], "your own"),
        (["x@example.com", f" {me['email']} "], "your own"),
        ("a@example.com", "cohosts"),  # wrong types: a string, a number, an object, nulls
        (7, "cohosts"),
        ({"email": "a@example.com"}, "cohosts"),
        (None, "cohosts"),
        ([None], "cohosts"),
        ([7], "cohosts"),
        ([["a@example.com"]], "cohosts"),
        (["a" * 250 + "@example.com"], "cohosts"),
    ]
    for value, named in bad:
        for method, path in (("POST", "/api/meetings"), ("PUT", f"/api/meetings/{mid}")):
            response = await host.http.request(
                method, path, json={**good, "cohosts": value}, headers=host._headers()
            )
            message = _assert_error(response, 422, "invalid_input")
            assert named in message, (value, message)
    # A lone surrogate in an email (JSON's "\ud800" escape) is refused the same way.
    for method, path in (("POST", "/api/meetings"), ("PUT", f"/api/meetings/{mid}")):
        content = json.dumps({**good, "cohosts": ["a\ud800@example.com"]}).encode()
        response = await host.http.request(
            method,
            path,
            content=content,
            headers=host._headers({"content-type": "application/json"}),
        )
        _assert_error(response, 422, "invalid_input")
    # Nothing was created, nothing changed.
    assert twin.meeting_items(mid) == before_items
    assert (await host.get("/api/meetings")).json() == before_list

    # Ten is the most; any case and stray spaces are fine: stored normalized, each once.
    ten = [f"p{i}@example.com" for i in range(10)]
    for sent, kept in (
        (ten, ten),
        ([*(f" P{i}@Example.com" for i in range(9)), "p0@EXAMPLE.COM "], ten[:9]),
    ):
        edited = await host.http.put(
            f"/api/meetings/{mid}", json={**good, "cohosts": sent}, headers=host._headers()
        )
        assert edited.status_code == 200, edited.text
        assert edited.json()["cohosts"] == kept
        stored = next(i for i in twin.meeting_items(mid) if i["sk"] == "META")
        assert stored["cohosts"] == kept
    # Only the host sees the list: the public page never shows it.
    public = (await host.http.get(f"/api/meetings/{mid}/public")).json()
    assert "cohosts" not in public and "p0@example.com" not in json.dumps(public)
    await host.close()
