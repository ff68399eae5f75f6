"""Meetings as a series of sessions, guest identity, removal that sticks, webinar roles and the
migration of older data, over real HTTP and WebSockets against the twin."""

from __future__ import annotations

import asyncio
import csv
import io
import time
import uuid
from typing import Any

import pytest
import websockets

from tests.integration.client import Api, SignalingClient, new_guest_key, refusal
from tests.integration.conftest import Twin
from townhall.auth.accounts import REFRESH_TTL_SECONDS


async def _host(twin: Twin, **fields: Any) -> tuple[Api, str]:
    api = Api(twin.base_url)
    await api.sign_up(f"s-{uuid.uuid4().hex[:8]}@example.com", "Hana Host")
    return api, (await api.create_meeting(**fields))["meeting_id"]


async def _enter(twin: Twin, api: Api, mid: str, name: str, **join: Any) -> SignalingClient:
    client = await SignalingClient.enter(twin.ws_url, await api.join(mid, name, **join))
    reply = await client.request("join")
    assert reply["type"] == "reply", reply
    return client


def _state(twin: Twin, mid: str) -> list[dict[str, Any]]:
    return [i for i in twin.meeting_items(mid) if not i["sk"].startswith("R#")]


async def test_ending_a_session_keeps_the_meeting_and_a_new_start_is_a_new_session(
    twin: Twin,
) -> None:
    api, mid = await _host(twin, rrule="FREQ=WEEKLY")
    guest = Api(twin.base_url)
    early = await guest.post(
        f"/api/meetings/{mid}/join", {"display_name": "Early", "guest_key": new_guest_key()}
    )
    assert early.status_code == 409 and early.json()["error"]["code"] == "not_started"
    assert (await guest.get(f"/api/meetings/{mid}/public")).json()["live"] is False

    host = await _enter(twin, api, mid, "Hana Host")
    first = host.session_id
    assert (await guest.get(f"/api/meetings/{mid}/public")).json()["live"] is True
    bob = await _enter(twin, guest, mid, "Bob")
    await bob.ok("chat", {"text": "first session"})
    await host.ok("end")
    await asyncio.wait_for(bob.closed, 10)
    listed = (await api.get(f"/api/meetings/{mid}")).json()
    assert listed["live"] is False and listed["next_occurrences"]  # the series goes on

    host2 = await _enter(twin, api, mid, "Hana Host")
    assert host2.session_id != first
    bob2 = await _enter(twin, guest, mid, "Bob")
    snapshot = await bob2.ok("ping")
    assert snapshot["pong"] > 0
    late = await _enter(twin, Api(twin.base_url), mid, "Late")
    assert late.session_id == host2.session_id
    # The new session starts afresh: the first one's chat is not in it.
    rejoined = await SignalingClient.enter(twin.ws_url, await guest.join(mid, "Eve"))
    fresh = await rejoined.ok("join")
    assert fresh["chat"] == [] and fresh["meeting"]["session_id"] == host2.session_id
    for c in (host, host2, bob2, late, rejoined):
        await c.close()
    await api.close()
    await guest.close()


async def test_allow_before_host_lets_a_guest_start_but_never_a_webinar(twin: Twin) -> None:
    api, mid = await _host(twin, allow_before_host=True)
    guest = Api(twin.base_url)
    starter = await _enter(twin, guest, mid, "Gus")
    assert starter.session_id
    _, webinar = await _host(twin, kind="webinar", allow_before_host=True)
    refused = await guest.post(
        f"/api/meetings/{webinar}/join", {"display_name": "Ann", "guest_key": new_guest_key()}
    )
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_started"
    assert (await guest.get(f"/api/meetings/{webinar}/public")).json()["allow_before_host"] is False
    await starter.close()
    await api.close()
    await guest.close()


async def test_attendance_counts_a_person_once_over_several_joins(twin: Twin) -> None:
    api, mid = await _host(twin)
    host = await _enter(twin, api, mid, "Hana Host")
    guest = Api(twin.base_url)
    me = new_guest_key()
    bob = await _enter(twin, guest, mid, "Bob", guest_key=me)
    await bob.ok("leave")
    await bob.close()
    bob = await _enter(twin, guest, mid, "Bob", guest_key=me)  # the link again, same browser
    await bob.close()  # a drop this time
    await host.wait_dropped(bob.participant_id)
    bob = await _enter(twin, guest, mid, "Bob again", guest_key=me)  # a new tab, same browser
    # Someone signed in joins from two browsers: one person too.
    sam = Api(twin.base_url)
    await sam.sign_up(f"sam-{uuid.uuid4().hex[:8]}@example.com", "Sam")
    sam_a = await _enter(twin, sam, mid, "Sam")
    sam_b = await _enter(twin, sam, mid, "Sam")
    assert sam_a.participant_id == sam_b.participant_id
    await asyncio.wait_for(sam_a.closed, 10)  # one person, one socket

    summary = (await api.get(f"/api/meetings/{mid}/summary")).json()
    people = {a["name"]: a for a in summary["attendance"]}
    assert sorted(people) == ["Bob", "Hana Host", "Sam"]  # the name they were let in with
    assert len(people["Bob"]["intervals"]) == 3
    assert len(people["Sam"]["intervals"]) == 1  # the second socket replaced the first
    for c in (host, bob, sam_b):
        await c.close()
    for a in (api, guest, sam):
        await a.close()


async def test_the_session_list_pages_newest_first(twin: Twin) -> None:
    api, mid = await _host(twin)
    started = []
    for _ in range(5):
        host = await _enter(twin, api, mid, "Hana Host")
        started.append(host.session_id)
        await host.ok("end")
        await host.close()
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await api.get(f"/api/meetings/{mid}/sessions{query}")).json()
        assert len(page["sessions"]) <= 2
        seen += [s["session_id"] for s in page["sessions"]]
        assert all(not s["live"] and s["ended_at"] for s in page["sessions"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(started))
    summary = await api.get(f"/api/meetings/{mid}/sessions/{started[0]}/summary")
    assert summary.status_code == 200
    assert summary.json()["meeting"]["session_id"] == started[0]
    # Bad input: a clear error, and nobody else's sessions.
    for bad in ("?limit=0", "?limit=51", "?cursor=%00", "?cursor=" + "A" * 300, "?cursor=bm9wZQ"):
        response = await api.get(f"/api/meetings/{mid}/sessions{bad}")
        assert response.status_code == 422, (bad, response.text)
        assert set(response.json()) == {"error"}
    assert (await api.get(f"/api/meetings/{mid}/sessions/s_nope/summary")).status_code == 404
    other = Api(twin.base_url)
    await other.sign_up(f"o-{uuid.uuid4().hex[:8]}@example.com")
    assert (await other.get(f"/api/meetings/{mid}/sessions")).status_code == 404
    assert (
        await other.get(f"/api/meetings/{mid}/sessions/{started[0]}/summary")
    ).status_code == 404
    await api.close()
    await other.close()


async def test_a_removed_participant_cannot_come_back_on_any_path(twin: Twin) -> None:
    api, mid = await _host(twin)
    host = await _enter(twin, api, mid, "Hana Host")
    guest = Api(twin.base_url)
    me = new_guest_key()
    grant = await guest.join(mid, "Mallory", guest_key=me)
    mallory = await SignalingClient.enter(twin.ws_url, grant)
    await mallory.ok("join")
    sam = Api(twin.base_url)
    await sam.sign_up(f"sam-{uuid.uuid4().hex[:8]}@example.com", "Sam")
    sam_grant = await sam.join(mid, "Sam")
    sam_ws = await SignalingClient.enter(twin.ws_url, sam_grant)
    await sam_ws.ok("join")
    for target in (mallory, sam_ws):
        await host.ok("remove", {"participant_id": target.participant_id})
        await asyncio.wait_for(target.closed, 10)

    # The link again (same browser), and a new tab: the same guest identity.
    again = await guest.post(
        f"/api/meetings/{mid}/join", {"display_name": "Mallory", "guest_key": me}
    )
    assert again.status_code == 403 and "removed" in again.json()["error"]["message"]
    # /rejoin with the old resume token.
    resumed = await guest.post(
        f"/api/meetings/{mid}/rejoin",
        {
            "session_id": grant["session_id"],
            "participant_id": grant["participant_id"],
            "resume_token": grant["resume_token"],
        },
    )
    assert resumed.status_code == 403
    # The old join token on a new socket.
    with pytest.raises(websockets.InvalidStatus) as refused:
        await SignalingClient.enter(twin.ws_url, grant)
    assert refused.value.response.status_code == 403
    # An account from another browser is the same person.
    other_browser = Api(twin.base_url)
    other_browser.token = sam.token
    assert (
        await other_browser.post(f"/api/meetings/{mid}/join", {"display_name": "Sam"})
    ).status_code == 403
    # A guest who clears their storage is a new guest (the waiting room or a lock decides).
    fresh = await guest.post(
        f"/api/meetings/{mid}/join", {"display_name": "M.", "guest_key": new_guest_key()}
    )
    assert fresh.status_code == 200
    for c in (host,):
        await c.close()
    for a in (api, guest, sam, other_browser):
        await a.close()


async def test_removed_with_may_return_asks_again_through_the_waiting_room(twin: Twin) -> None:
    api, mid = await _host(twin)
    host = await _enter(twin, api, mid, "Hana Host")
    guest = Api(twin.base_url)
    me = new_guest_key()
    bob = await _enter(twin, guest, mid, "Bob", guest_key=me)
    assert (
        await refusal(host, "remove", {"participant_id": bob.participant_id, "may_return": "yes"})
        == "invalid_input"
    )
    await host.ok("remove", {"participant_id": bob.participant_id, "may_return": True})
    await asyncio.wait_for(bob.closed, 10)
    back = await SignalingClient.enter(twin.ws_url, await guest.join(mid, "Bob", guest_key=me))
    waiting = await back.ok("join")
    assert waiting["status"] == "waiting"  # the meeting has no waiting room: this is for Bob
    await host.wait_event("waiting.joined", lambda e: e["data"]["participant"]["name"] == "Bob")
    await host.ok("admit", {"participant_id": back.participant_id})
    await back.wait_event("you.admitted")
    for c in (host, back):
        await c.close()
    await api.close()
    await guest.close()


async def test_a_webinar_audience_sees_the_stage_not_each_other(twin: Twin) -> None:
    api, mid = await _host(twin, kind="webinar")
    host = await _enter(twin, api, mid, "Hana Host")
    guest = Api(twin.base_url)
    ann = await _enter(twin, guest, mid, "Ann")
    ben = await _enter(twin, guest, mid, "Ben")
    await host.wait_event("participant.joined", lambda e: e["data"]["participant"]["name"] == "Ben")
    await asyncio.sleep(0.3)
    assert not [e for e in ann.events if e["event"] == "participant.joined"]  # not told of Ben
    snapshot = await (await SignalingClient.enter(twin.ws_url, await guest.join(mid, "Cy"))).ok(
        "join"
    )
    assert [p["name"] for p in snapshot["participants"]] == ["Hana Host", "Cy"]
    assert snapshot["attendees"] == 3
    # No private messages between attendees; to the host, yes.
    assert await refusal(ann, "chat", {"text": "psst", "to": ben.participant_id}) == "forbidden"
    await ann.ok("chat", {"text": "a question", "to": host.participant_id})
    # Bad input and the wrong people for allow_talk: refused, nothing changed.
    before = _state(twin, mid)
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "invalid_input"),
        ({"participant_id": ann.participant_id}, "invalid_input"),
        ({"participant_id": ann.participant_id, "allowed": 1}, "invalid_input"),
        ({"participant_id": "p_nobody", "allowed": True}, "not_found"),
        ({"participant_id": host.participant_id, "allowed": False}, "conflict"),
        ({"participant_id": ann.participant_id, "allowed": True, "extra": 1}, "invalid_input"),
    ]
    for data, code in cases:
        assert await refusal(host, "allow_talk", data) == code, data
    assert (
        await refusal(ben, "allow_talk", {"participant_id": ann.participant_id, "allowed": True})
        == "forbidden"
    )
    assert _state(twin, mid) == before
    # Allowed to talk: a panelist everyone sees; taken back: an attendee again, muted.
    promoted = await host.request(
        "allow_talk", {"participant_id": ann.participant_id, "allowed": True}, request_id="talk-1"
    )
    assert promoted["data"]["participant"]["role"] == "panelist"
    await ben.wait_event(
        "participant.updated", lambda e: e["data"]["participant"]["role"] == "panelist"
    )
    replay = await host.request(
        "allow_talk", {"participant_id": ann.participant_id, "allowed": True}, request_id="talk-1"
    )
    assert replay["error"]["code"] == "duplicate_request"
    await ann.ok("mute", {"muted": False})
    demoted = await host.ok("allow_talk", {"participant_id": ann.participant_id, "allowed": False})
    assert demoted["participant"]["role"] == "attendee" and demoted["participant"]["muted"]
    assert await refusal(ann, "mute", {"muted": False}) == "forbidden"
    in_a_meeting_api, meeting_mid = await _host(twin)
    mhost = await _enter(twin, in_a_meeting_api, meeting_mid, "Hana")
    mguest = await _enter(twin, guest, meeting_mid, "Gil")
    assert (
        await refusal(
            mhost, "allow_talk", {"participant_id": mguest.participant_id, "allowed": True}
        )
        == "conflict"
    )
    for c in (host, ann, ben, mhost, mguest):
        await c.close()
    await api.close()
    await guest.close()


async def test_a_leaving_host_hands_over_and_the_last_to_leave_ends_it(twin: Twin) -> None:
    api, mid = await _host(twin)
    host = await _enter(twin, api, mid, "Hana Host")
    guest = Api(twin.base_url)
    bob = await _enter(twin, guest, mid, "Bob")
    cat = await _enter(twin, guest, mid, "Cat")
    await host.ok("promote", {"participant_id": cat.participant_id})
    assert await refusal(bob, "leave", {"successor": cat.participant_id}) == "forbidden"
    assert await refusal(host, "leave", {"successor": "p_nobody"}) == "not_found"
    await host.ok("leave")  # no pick: the co-host present longest
    await cat.wait_event(
        "participant.updated",
        lambda e: (
            e["data"]["participant"]["participant_id"] == cat.participant_id
            and e["data"]["participant"]["role"] == "host"
        ),
    )
    await cat.ok("leave", {"successor": bob.participant_id})
    await bob.wait_event(
        "participant.updated",
        lambda e: (
            e["data"]["participant"]["participant_id"] == bob.participant_id
            and e["data"]["participant"]["role"] == "host"
        ),
    )
    assert (await api.get(f"/api/meetings/{mid}")).json()["live"] is True
    await bob.ok("leave")  # the last one
    assert (await api.get(f"/api/meetings/{mid}")).json()["live"] is False
    for c in (host, bob, cat):
        await c.close()
    await api.close()
    await guest.close()


async def test_a_one_off_tried_today_still_works_tomorrow(twin: Twin) -> None:
    tomorrow = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() + 86400))
    api = Api(twin.base_url)
    account = await api.sign_up(f"t-{uuid.uuid4().hex[:8]}@example.com", "Hana Host")
    mid = (await api.create_meeting(start=tomorrow, timezone="UTC"))["meeting_id"]
    host = await _enter(twin, api, mid, "Hana Host")  # tried out today
    await host.ok("end")
    await host.close()
    try:
        twin.local.set_clock_offset(86400 + 600)
        # A day later the access token has long expired: the page refreshes it, as here.
        refreshed = await api.post("/api/auth/refresh", {"refresh_token": account["refresh_token"]})
        api.token = refreshed.json()["access_token"]
        listed = {m["meeting_id"]: m for m in (await api.get("/api/meetings")).json()}
        assert mid in listed and listed[mid]["next_occurrences"]  # it is happening now
        again = await _enter(twin, api, mid, "Hana Host")
        guest = await _enter(twin, Api(twin.base_url), mid, "Gus")
        assert again.session_id == guest.session_id
        await again.close()
        await guest.close()
    finally:
        twin.local.set_clock_offset(0)
    await api.close()


async def test_a_session_everyone_dropped_out_of_ends_at_the_next_join(twin: Twin) -> None:
    """Nobody said `leave` (tabs closed, laptops shut): the next join after the reconnect
    window finds the session abandoned, ends it, and starts a new one."""
    api, mid = await _host(twin)
    host = await _enter(twin, api, mid, "Hana Host")
    guest = await _enter(twin, Api(twin.base_url), mid, "Gus")
    first = host.session_id
    await host.close()
    await guest.close()
    await asyncio.sleep(0.5)  # the $disconnects land
    # Within the window it is still the same session: a reload comes back into it.
    back = await _enter(twin, api, mid, "Hana Host")
    assert back.session_id == first
    await back.close()
    await asyncio.sleep(0.5)
    try:
        twin.local.set_clock_offset(130)
        refreshed = await api.post("/api/auth/refresh", {"refresh_token": api.refresh_token})
        api.token = refreshed.json()["access_token"]
        again = await _enter(twin, api, mid, "Hana Host")
        assert again.session_id != first
        rows = (await api.get(f"/api/meetings/{mid}/sessions")).json()["sessions"]
        assert [(r["session_id"], r["live"]) for r in rows] == [
            (again.session_id, True),
            (first, False),
        ]
        await again.close()
    finally:
        twin.local.set_clock_offset(0)
    await api.close()


async def test_deleting_a_meeting_deletes_every_session_of_it_but_not_while_one_runs(
    twin: Twin,
) -> None:
    api, mid = await _host(twin)
    for _ in range(2):
        host = await _enter(twin, api, mid, "Hana Host")
        guest = await _enter(twin, Api(twin.base_url), mid, "Gus")
        await guest.ok("chat", {"text": "hello"})
        await host.ok("poll_create", {"question": "Q?", "options": ["a", "b"]})
        await host.ok("end")
        await host.close()
        await guest.close()
    live = await _enter(twin, api, mid, "Hana Host")
    running = await api.http.delete(f"/api/meetings/{mid}", headers=api._headers())
    assert running.status_code == 409 and "end it first" in running.json()["error"]["message"]
    await live.ok("end")
    await live.close()
    items = twin.meeting_items(mid)
    sessions = [i["session_id"] for i in items if i["sk"].startswith("SESSION#")]
    assert len(sessions) == 3 and len(items) > 10
    deleted = await api.http.delete(f"/api/meetings/{mid}", headers=api._headers())
    assert deleted.status_code == 204
    assert twin.meeting_items(mid) == []
    for sid in sessions:
        assert twin.session_items(mid, sid) == []
    assert (await api.get(f"/api/meetings/{mid}")).status_code == 404
    await api.close()


async def test_joins_and_rejoins_with_bad_identity_or_session_are_refused_cleanly(
    twin: Twin,
) -> None:
    api, mid = await _host(twin)
    host = await _enter(twin, api, mid, "Hana Host")
    guest = Api(twin.base_url)
    path = f"/api/meetings/{mid}/join"
    before = _state(twin, mid)
    for key in ("short", "x" * 129, "has spaces in it and more", "\u00e9" * 30, 42, ["k"]):
        response = await guest.post(path, {"display_name": "Bob", "guest_key": key})
        assert response.status_code == 422, (key, response.text)
        assert response.json()["error"]["code"] == "invalid_input"
    assert _state(twin, mid) == before
    grant = await guest.join(mid, "Bob")
    rejoin = f"/api/meetings/{mid}/rejoin"
    resume = {
        "session_id": grant["session_id"],
        "participant_id": grant["participant_id"],
        "resume_token": grant["resume_token"],
    }
    other_session = await guest.post(rejoin, {**resume, "session_id": "s_another"})
    assert other_session.status_code == 410
    someone_else = await guest.post(rejoin, {**resume, "participant_id": host.participant_id})
    assert someone_else.status_code == 401
    await host.ok("end")
    ended = await guest.post(rejoin, resume)  # the session is over
    assert ended.status_code == 410
    await host.close()
    await api.close()
    await guest.close()


async def test_remove_with_may_return_refuses_bad_input_the_wrong_people_and_a_replay(
    twin: Twin,
) -> None:
    """`remove` with `may_return`: the usual matrix, each refused with a clear code and nothing
    stored changed (event counter included)."""
    api, mid = await _host(twin)
    host = await _enter(twin, api, mid, "Hana Host")
    guest = Api(twin.base_url)
    bob = await _enter(twin, guest, mid, "Bob")
    cat = await _enter(twin, guest, mid, "Cat")
    await host.wait_event("participant.joined", lambda e: e["data"]["participant"]["name"] == "Cat")
    bob_id = bob.participant_id
    before = _state(twin, mid)
    cases: list[tuple[dict[str, Any], str]] = [
        # Malformed, and the wrong types.
        ({"may_return": True}, "invalid_input"),
        ({"participant_id": bob_id, "may_return": "yes"}, "invalid_input"),
        ({"participant_id": bob_id, "may_return": 1}, "invalid_input"),
        ({"participant_id": bob_id, "may_return": None}, "invalid_input"),
        ({"participant_id": bob_id, "may_return": [True]}, "invalid_input"),
        ({"participant_id": bob_id, "may_return": {"yes": True}}, "invalid_input"),
        ({"participant_id": 42, "may_return": True}, "invalid_input"),
        ({"participant_id": "not an id!", "may_return": True}, "invalid_input"),
        ({"participant_id": "p" * 65, "may_return": True}, "invalid_input"),
        ({"participant_id": bob_id, "may_return": True, "extra": 1}, "invalid_input"),
        # Unknown ids.
        ({"participant_id": "p_nobody", "may_return": True}, "not_found"),
        ({"participant_id": "p_nobody", "may_return": False}, "not_found"),
    ]
    for data, code in cases:
        assert await refusal(host, "remove", data) == code, data
    # Not a moderator: a guest acting on another guest, or on the host.
    for target in (cat.participant_id, host.participant_id):
        for may_return in (True, False):
            data = {"participant_id": target, "may_return": may_return}
            assert await refusal(bob, "remove", data) == "forbidden", data
    assert _state(twin, mid) == before

    # A replay: the same request id again, for the same person or another one.
    done = await host.request(
        "remove", {"participant_id": bob_id, "may_return": True}, request_id="remove-1"
    )
    assert done["type"] == "reply", done
    await asyncio.wait_for(bob.closed, 10)
    await asyncio.sleep(0.3)  # Bob's $disconnect lands (and changes nothing more)
    after = _state(twin, mid)
    removed = next(i for i in after if i["sk"] == f"P#{bob_id}")
    assert removed["status"] == "removed" and removed["may_return"] is True
    for data in (
        {"participant_id": bob_id, "may_return": True},
        {"participant_id": cat.participant_id, "may_return": False},
    ):
        replay = await host.request("remove", data, request_id="remove-1")
        assert replay["type"] == "error" and replay["error"]["code"] == "duplicate_request", replay
    assert _state(twin, mid) == after
    assert not cat.closed.done()
    for c in (host, cat):
        await c.close()
    await api.close()
    await guest.close()


async def test_leave_with_a_successor_refuses_bad_input_and_the_wrong_people(twin: Twin) -> None:
    """`leave` with `successor`: bad input or a pick that cannot take over is refused with a
    clear code before anything happens: the host is still there, still the host."""
    api, mid = await _host(twin)
    host = await _enter(twin, api, mid, "Hana Host")
    guest = Api(twin.base_url)
    bob = await _enter(twin, guest, mid, "Bob")
    cat = await _enter(twin, guest, mid, "Cat")
    gone = await _enter(twin, guest, mid, "Dan")
    await host.ok("promote", {"participant_id": cat.participant_id})
    await gone.ok("leave")
    await gone.close()
    await host.wait_event(
        "participant.left", lambda e: e["data"]["participant_id"] == gone.participant_id
    )
    bob_id = bob.participant_id
    before = _state(twin, mid)
    cases: list[tuple[dict[str, Any], str]] = [
        # Malformed, and the wrong types.
        ({"successor": ""}, "invalid_input"),
        ({"successor": "not an id!"}, "invalid_input"),
        ({"successor": "p" * 65}, "invalid_input"),
        ({"successor": 42}, "invalid_input"),
        ({"successor": True}, "invalid_input"),
        ({"successor": [bob_id]}, "invalid_input"),
        ({"successor": {"participant_id": bob_id}}, "invalid_input"),
        ({"successor": bob_id, "extra": 1}, "invalid_input"),
        ({"participant_id": bob_id}, "invalid_input"),  # not the field's name
        # Unknown, gone, or oneself: nobody present to take over.
        ({"successor": "p_nobody"}, "not_found"),
        ({"successor": gone.participant_id}, "not_found"),
        ({"successor": host.participant_id}, "not_found"),
    ]
    for data, code in cases:
        assert await refusal(host, "leave", data) == code, data
    # Only the host hands on the host role: not a guest, not a co-host.
    for caller, successor in ((bob, cat.participant_id), (bob, "p_nobody"), (cat, bob_id)):
        assert await refusal(caller, "leave", {"successor": successor}) == "forbidden"
    assert _state(twin, mid) == before
    assert (await host.ok("ping"))["pong"] > 0  # still in, on the same connection
    for c in (host, bob, cat):
        await c.close()
    await api.close()
    await guest.close()


async def test_a_replayed_leave_is_refused_and_changes_nothing(twin: Twin) -> None:
    """A `leave` whose request id was already served gets `duplicate_request`, as every other
    action does, and changes nothing: not an event number (the replay is refused before the
    hand-over takes one), and not a second success after a hand-over."""
    api, mid = await _host(twin)
    host = await _enter(twin, api, mid, "Hana Host")
    guest = Api(twin.base_url)
    bob = await _enter(twin, guest, mid, "Bob")
    await host.wait_event("participant.joined", lambda e: e["data"]["participant"]["name"] == "Bob")
    served = await host.request("chat", {"text": "brb"}, request_id="bye-1")
    assert served["type"] == "reply"
    before = _state(twin, mid)
    reused = await host.request("leave", {"successor": bob.participant_id}, request_id="bye-1")
    assert (reused["type"], _state(twin, mid)) == ("error", before), reused
    assert reused["error"]["code"] == "duplicate_request"
    done = await host.request("leave", {"successor": bob.participant_id}, request_id="bye-2")
    assert done["type"] == "reply", done
    await asyncio.sleep(0.3)
    after = _state(twin, mid)
    replay = await host.request("leave", {"successor": bob.participant_id}, request_id="bye-2")
    assert replay["type"] == "error" and replay["error"]["code"] == "duplicate_request", replay
    assert _state(twin, mid) == after
    for c in (host, bob):
        await c.close()
    await api.close()
    await guest.close()


async def test_a_meeting_is_edited_after_its_session_ended(twin: Twin) -> None:
    """The bug was `410 gone`: ending a session ended the meeting. Editing it afterwards works,
    keeps its past sessions, and the next session runs on the new settings."""
    api, mid = await _host(twin, rrule="FREQ=WEEKLY")
    host = await _enter(twin, api, mid, "Hana Host")
    first = host.session_id
    await host.ok("end")
    await host.close()
    ended = (await api.get(f"/api/meetings/{mid}")).json()
    assert ended["live"] is False and ended["last_session_at"]
    body = {
        "title": "Standup, moved",
        "start": "2026-12-02T10:30",
        "timezone": "Europe/Paris",
        "duration_minutes": 45,
        "rrule": "FREQ=WEEKLY",
        "waiting_room": True,
    }
    edited = await api.http.put(f"/api/meetings/{mid}", json=body, headers=api._headers())
    assert edited.status_code == 200, edited.text
    out = edited.json()
    assert (out["title"], out["start"], out["duration_minutes"], out["waiting_room"]) == (
        "Standup, moved",
        "2026-12-02T10:30",
        45,
        True,
    )
    assert out["last_session_at"] == ended["last_session_at"] and out["live"] is False
    assert (await api.get(f"/api/meetings/{mid}")).json()["title"] == "Standup, moved"
    rows = (await api.get(f"/api/meetings/{mid}/sessions")).json()["sessions"]
    assert [(r["session_id"], r["live"]) for r in rows] == [(first, False)]
    again = await SignalingClient.enter(twin.ws_url, await api.join(mid, "Hana Host"))
    snapshot = await again.ok("join")
    assert snapshot["meeting"]["session_id"] != first
    assert (snapshot["meeting"]["title"], snapshot["meeting"]["waiting_room"]) == (
        "Standup, moved",
        True,
    )
    # Edited while a session runs: the answer still says so.
    live = await api.http.put(
        f"/api/meetings/{mid}", json={**body, "title": "Standup, live"}, headers=api._headers()
    )
    assert live.status_code == 200, live.text
    assert (live.json()["live"], live.json()["live_session_id"]) == (True, again.session_id)
    await again.close()
    await api.close()


async def test_a_sessions_summary_csv_holds_that_session_only(twin: Twin) -> None:
    api, mid = await _host(twin)
    guest = Api(twin.base_url)
    runs: list[tuple[str, str, str]] = []
    for name, text in (("Gus", "first run"), ("Gil", "second run")):
        host = await _enter(twin, api, mid, "Hana Host")
        other = await _enter(twin, guest, mid, name)
        await other.ok("chat", {"text": text})
        await host.ok("end")
        for c in (host, other):
            await c.close()
        runs.append((host.session_id, name, text))

    def rows(response: Any) -> list[list[str]]:
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        return list(csv.reader(io.StringIO(response.text)))

    base = f"/api/meetings/{mid}/sessions"
    for sid, name, text in runs:
        chat = rows(await api.get(f"{base}/{sid}/summary.csv?part=chat"))
        assert chat[0] == ["at", "from_name", "text"]
        assert [(r[1], r[2]) for r in chat[1:]] == [(name, text)]
        attendance = rows(await api.get(f"{base}/{sid}/summary.csv?part=attendance"))
        assert sorted({r[0] for r in attendance[1:]}) == sorted(["Hana Host", name])
    latest = rows(await api.get(f"/api/meetings/{mid}/summary.csv?part=chat"))
    assert [r[2] for r in latest[1:]] == ["second run"]

    sid = runs[0][0]
    assert (await api.get(f"{base}/s_nope/summary.csv?part=chat")).status_code == 404
    assert (await api.get(f"{base}/{sid}/summary.csv?part=secrets")).status_code == 422
    other_host = Api(twin.base_url)
    await other_host.sign_up(f"o-{uuid.uuid4().hex[:8]}@example.com")
    theirs = (await other_host.create_meeting())["meeting_id"]
    for path in (
        f"{base}/{sid}/summary.csv?part=chat",  # another host's meeting
        f"/api/meetings/{theirs}/sessions/{sid}/summary.csv?part=chat",  # not that meeting's
    ):
        response = await other_host.get(path)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == "not_found"
    # Nor the host's own session under another of their meetings.
    mine = (await api.create_meeting())["meeting_id"]
    wrong = await api.get(f"/api/meetings/{mine}/sessions/{sid}/summary.csv?part=chat")
    assert wrong.status_code == 404
    assert (await guest.get(f"{base}/{sid}/summary.csv?part=chat")).status_code == 401
    for a in (api, guest, other_host):
        await a.close()


async def test_refresh_tokens_live_and_die_by_the_control_planes_clock(twin: Twin) -> None:
    """A refresh token's 30 days and an account's `created_at` are read from the clock seam
    (townhall.clock), as the checks are: issued "in 40 days", a token works then, and is
    refused once the moved clock passes its life."""
    days = 86400
    issued_at = 40 * days
    api = Api(twin.base_url)
    email = f"clock-{uuid.uuid4().hex[:8]}@example.com"
    try:
        twin.local.set_clock_offset(issued_at)
        account = await api.sign_up(email, "Cleo")
        signed_in = await api.post(
            "/api/auth/signin", {"email": email, "password": "correct horse 1"}
        )
        assert signed_in.status_code == 200, signed_in.text
        later = signed_in.json()["refresh_token"]
        stored = twin.local.dynamodb_client().get_item(
            TableName=twin.local.table_names["ACCOUNTS_TABLE"],
            Key={"pk": {"S": f"USER#{account['user_id']}"}},
            ConsistentRead=True,
        )["Item"]
        assert int(stored["created_at"]["N"]) >= time.time() + issued_at - 60
        refreshed = await api.post("/api/auth/refresh", {"refresh_token": account["refresh_token"]})
        assert refreshed.status_code == 200, refreshed.text  # fresh, by the clock it was made by

        twin.local.set_clock_offset(issued_at + REFRESH_TTL_SECONDS + 60)
        expired = await api.post("/api/auth/refresh", {"refresh_token": later})
        assert expired.status_code == 401, expired.text
        assert expired.json()["error"]["code"] == "unauthenticated"
        newest = refreshed.json()["refresh_token"]
        assert (await api.post("/api/auth/refresh", {"refresh_token": newest})).status_code == 401
    finally:
        twin.local.set_clock_offset(0)
    await api.close()
