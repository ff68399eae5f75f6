"""The reads of a meeting hold up against what is stored, over real HTTP and WebSockets
against the twin:

- a stored meeting item with attributes that cannot be read (written by hand, by an older
  version or by a bug: issue 9, item 2) degrades for that meeting only: the host's list, the
  meeting and its public page answer, flagged; it cannot be joined; editing repairs it;
- a session everybody dropped out of (no `leave`) is ended by the first read that depends on
  it, not only by the next join: the host's list ("Live now"), the public page and `DELETE`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
from boto3.dynamodb.types import TypeSerializer

from tests.integration.client import Api, SignalingClient, new_guest_key
from tests.integration.conftest import Twin

_serializer = TypeSerializer()
_GOOD = {"title": "T", "start": "2027-02-01T10:00", "timezone": "UTC", "duration_minutes": 30}


def _assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code and body["error"]["message"], body


def _put_meeting(twin: Twin, host_id: str, mid: str, /, **fields: Any) -> None:
    """A meeting's META as it is written today, with `fields` replaced (None: removed)."""
    item: dict[str, Any] = {
        "pk": f"M#{mid}",
        "sk": "META",
        "meeting_id": mid,
        "host_id": host_id,
        "title": "Stored",
        "kind": "meeting",
        "start_local": "2027-01-04T09:00",
        "start_utc": "2027-01-04T09:00:00Z",
        "timezone": "UTC",
        "duration_minutes": 30,
        "passcode": "2468",
        "waiting_room": False,
        "created_at": 1_800_000_000,
        "updated_at": 1_800_000_000,
        "video_slots": 9,
        "allow_before_host": False,
        "cohosts": [],
        "last_session_at": 0,
        **fields,
    }
    twin.local.dynamodb_client().put_item(
        TableName=twin.local.table_names["MEETINGS_TABLE"],
        Item={k: _serializer.serialize(v) for k, v in item.items() if v is not None},
    )


async def test_a_damaged_stored_meeting_degrades_for_that_meeting_only(twin: Twin) -> None:
    api = Api(twin.base_url)
    session = await api.sign_up(f"dmg-{uuid.uuid4().hex[:6]}@example.com")
    good = await api.create_meeting(title="Good", start="2027-01-05T09:00")
    damaged: dict[str, tuple[dict[str, Any], str]] = {
        "title": ({"title": 42}, "title"),
        "notitle": ({"title": None}, "title"),
        "created": ({"created_at": "yesterday"}, "created_at"),
        "updated": ({"updated_at": "soon"}, "updated_at"),
        "noupdated": ({"updated_at": None}, "updated_at"),
        "slots": ({"video_slots": "many"}, "video_slots"),
        "slots0": ({"video_slots": 0}, "video_slots"),
        "kind": ({"kind": "party"}, "kind"),
        "flags": ({"waiting_room": "yes", "allow_before_host": 1}, "waiting_room"),
        "passcode": ({"passcode": 2468}, "passcode"),
        "cohosts": ({"cohosts": "a@example.com"}, "cohosts"),
        "session": ({"live_session_id": 7, "last_session_at": "x"}, "live_session_id"),
        "id": ({"meeting_id": "someone-else"}, "meeting_id"),
    }
    for suffix, (fields, _) in damaged.items():
        _put_meeting(twin, session["user_id"], f"dmg{suffix}", **fields)
    # And one written today, untouched: read as it is.
    _put_meeting(twin, session["user_id"], "dmgnone")

    started = time.monotonic()
    listed = await api.get("/api/meetings")
    assert listed.status_code == 200, listed.text  # 500 for the whole list before
    assert time.monotonic() - started < 5
    by_id = {m["meeting_id"]: m for m in listed.json()}
    assert set(by_id) == {good["meeting_id"], "dmgnone", *(f"dmg{s}" for s in damaged)}
    for fine in (good["meeting_id"], "dmgnone"):
        assert by_id[fine]["stored_error"] is None and by_id[fine]["schedule_error"] is None
    assert by_id["dmgnone"]["passcode"] == "2468" and by_id["dmgnone"]["next_occurrences"]

    guest = Api(twin.base_url)
    for suffix, (_, field) in damaged.items():
        mid = f"dmg{suffix}"
        listed_one = by_id[mid]
        assert listed_one["stored_error"] and field in listed_one["stored_error"], listed_one
        got = await api.get(f"/api/meetings/{mid}")
        assert got.status_code == 200 and field in got.json()["stored_error"], got.text
        public = await guest.get(f"/api/meetings/{mid}/public")
        assert public.status_code == 200 and field in public.json()["stored_error"], public.text
        # Never joined as it is (its passcode or settings may be what cannot be read).
        joined = await guest.post(
            f"/api/meetings/{mid}/join",
            {"display_name": "Gus", "passcode": "2468", "guest_key": new_guest_key()},
        )
        _assert_error(joined, 409, "conflict")
        _assert_error(await api.post(f"/api/meetings/{mid}/join", {}), 409, "conflict")
        _assert_error(await api.get(f"/api/meetings/{mid}/invite.ics"), 409, "conflict")
        assert [i["sk"] for i in twin.meeting_items(mid)] == ["META"]  # no session started
    # The sound meetings are untouched by their neighbours.
    assert (await guest.get(f"/api/meetings/{good['meeting_id']}/public")).json()[
        "stored_error"
    ] is None

    # Editing repairs a damaged meeting, whatever was unreadable (its version too).
    for suffix in ("updated", "noupdated", "created", "session", "passcode", "cohosts"):
        mid = f"dmg{suffix}"
        fixed = await api.http.put(
            f"/api/meetings/{mid}", json={**_GOOD, "passcode": "1357"}, headers=api._headers()
        )
        assert fixed.status_code == 200, fixed.text
        assert fixed.json()["stored_error"] is None and fixed.json()["live"] is False
        again = (await api.get(f"/api/meetings/{mid}")).json()
        assert again["stored_error"] is None and again["passcode"] == "1357", again
    joined = await guest.post(
        "/api/meetings/dmgsession/join",
        {"display_name": "Gus", "passcode": "1357", "guest_key": new_guest_key()},
    )
    _assert_error(joined, 409, "not_started")  # a meeting like any other again
    # A damaged one can always be deleted.
    deleted = await api.http.delete("/api/meetings/dmgtitle", headers=api._headers())
    assert deleted.status_code == 204
    remaining = {m["meeting_id"] for m in (await api.get("/api/meetings")).json()}
    assert "dmgtitle" not in remaining and "dmgkind" in remaining
    await api.close()
    await guest.close()


async def _abandoned_session(twin: Twin, api: Api, guests: Api) -> tuple[str, str]:
    """A meeting whose session everyone dropped out of (sockets closed, no `leave`)."""
    mid = (await api.create_meeting())["meeting_id"]
    host = await SignalingClient.enter(twin.ws_url, await api.join(mid, "Hana Host"))
    assert (await host.request("join"))["type"] == "reply"
    guest = await SignalingClient.enter(twin.ws_url, await guests.join(mid, "Gus"))
    assert (await guest.request("join"))["type"] == "reply"
    await host.close()
    await guest.close()
    return mid, host.session_id


def _session_ended(twin: Twin, mid: str, sid: str) -> bool:
    meta = next(i for i in twin.session_items(mid, sid) if i["sk"] == "META")
    return bool(meta.get("ended_at"))


async def test_an_abandoned_session_is_not_live_on_the_list_the_public_page_or_delete(
    twin: Twin,
) -> None:
    api = Api(twin.base_url)
    account = await api.sign_up(f"gone-{uuid.uuid4().hex[:6]}@example.com", "Hana Host")
    guests = Api(twin.base_url)
    listed_mid, listed_sid = await _abandoned_session(twin, api, guests)
    public_mid, public_sid = await _abandoned_session(twin, api, guests)
    deleted_mid, deleted_sid = await _abandoned_session(twin, api, guests)
    await asyncio.sleep(0.5)  # the $disconnects land
    # Within the reconnect window they may come back: still live everywhere.
    assert (await api.get(f"/api/meetings/{public_mid}/public")).json()["live"] is True
    assert all(m["live"] for m in (await api.get("/api/meetings")).json())
    running = await api.http.delete(f"/api/meetings/{deleted_mid}", headers=api._headers())
    _assert_error(running, 409, "conflict")
    try:
        twin.local.set_clock_offset(130)  # past the 2-minute window, nobody back
        refreshed = await api.post("/api/auth/refresh", {"refresh_token": account["refresh_token"]})
        api.token = refreshed.json()["access_token"]

        # Each read ends the one it looks at, and only that one.
        public = (await guests.get(f"/api/meetings/{public_mid}/public")).json()
        assert public["live"] is False
        assert _session_ended(twin, public_mid, public_sid)
        assert not _session_ended(twin, listed_mid, listed_sid)
        assert not _session_ended(twin, deleted_mid, deleted_sid)

        gone = await api.http.delete(f"/api/meetings/{deleted_mid}", headers=api._headers())
        assert gone.status_code == 204, gone.text
        assert twin.meeting_items(deleted_mid) == []
        assert not _session_ended(twin, listed_mid, listed_sid)

        listed = {m["meeting_id"]: m for m in (await api.get("/api/meetings")).json()}
        assert set(listed) == {listed_mid, public_mid}
        assert listed[listed_mid]["live"] is False and listed[listed_mid]["live_session_id"] is None
        assert _session_ended(twin, listed_mid, listed_sid)
        rows = (await api.get(f"/api/meetings/{listed_mid}/sessions")).json()["sessions"]
        assert [(r["session_id"], r["live"]) for r in rows] == [(listed_sid, False)]
        # The next join starts a new session, as before.
        again = await api.join(listed_mid, "Hana Host")
        assert again["session_id"] != listed_sid
    finally:
        twin.local.set_clock_offset(0)
    await api.close()
    await guests.close()
