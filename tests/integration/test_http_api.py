"""Accounts, scheduling and joining over real HTTP against the twin."""

from __future__ import annotations

import uuid

import icalendar
import jwt

from tests.integration.client import Api
from tests.integration.conftest import Twin


async def test_sign_up_schedule_and_fetch_ics(twin: Twin) -> None:
    api = Api(twin.base_url)
    session = await api.sign_up(f"ada-{uuid.uuid4().hex[:6]}@example.com", "Ada")
    assert jwt.get_unverified_header(session["access_token"])["alg"] == "EdDSA"

    me = (await api.get("/api/auth/me")).json()
    assert me["name"] == "Ada"

    meeting = await api.create_meeting(
        title="Weekly sync",
        start="2027-01-05T09:00",
        timezone="Europe/Paris",
        duration_minutes=45,
        rrule="FREQ=WEEKLY;BYDAY=TU;COUNT=8",
        passcode="4321",
        waiting_room=True,
    )
    assert meeting["join_url"] == f"{twin.base_url}/join.html?m={meeting['meeting_id']}"
    assert len(meeting["next_occurrences"]) == 5

    listed = (await api.get("/api/meetings")).json()
    assert [m["meeting_id"] for m in listed] == [meeting["meeting_id"]]

    occurrences = (
        await api.get(f"/api/meetings/{meeting['meeting_id']}/occurrences?count=20")
    ).json()
    assert len(occurrences) == 8
    assert occurrences[0]["start_utc"] == "2027-01-05T08:00:00Z"
    assert occurrences[-1]["start_utc"] == "2027-02-23T08:00:00Z"

    ics = await api.get(f"/api/meetings/{meeting['meeting_id']}/invite.ics")
    assert ics.status_code == 200
    assert ics.headers["content-type"].startswith("text/calendar")
    assert "attachment" in ics.headers["content-disposition"]
    event = next(iter(icalendar.Calendar.from_ical(ics.text).walk("VEVENT")))
    assert str(event["SUMMARY"]) == "Weekly sync"
    assert str(event["URL"]) == meeting["join_url"]
    rrule = event["RRULE"]
    assert isinstance(rrule, icalendar.vRecur)
    assert rrule["COUNT"] == [8]

    public = (await api.get(f"/api/meetings/{meeting['meeting_id']}/public")).json()
    assert public["needs_passcode"] is True and "passcode" not in public

    docs = await api.get("/api/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = (await api.get("/api/openapi.json")).json()
    assert "/api/meetings/{meeting_id}/invite.ics" in spec["paths"]
    await api.close()


async def test_refresh_token_rotates_and_works_once(twin: Twin) -> None:
    api = Api(twin.base_url)
    session = await api.sign_up(f"rot-{uuid.uuid4().hex[:6]}@example.com")
    first = await api.post("/api/auth/refresh", {"refresh_token": session["refresh_token"]})
    assert first.status_code == 200
    again = await api.post("/api/auth/refresh", {"refresh_token": session["refresh_token"]})
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "unauthenticated"
    signin = await api.post(
        "/api/auth/signin", {"email": session["email"], "password": "wrong password!"}
    )
    assert signin.status_code == 401
    await api.close()


async def test_replayed_create_makes_one_meeting(twin: Twin) -> None:
    api = Api(twin.base_url)
    await api.sign_up(f"idem-{uuid.uuid4().hex[:6]}@example.com")
    body = {"title": "Once", "start": "2027-02-01T10:00", "timezone": "UTC", "duration_minutes": 30}
    key = {"Idempotency-Key": f"create-{uuid.uuid4().hex}"}
    first = await api.post("/api/meetings", body, key)
    second = await api.post("/api/meetings", body, key)
    assert first.status_code == 201 and second.status_code == 201
    assert first.json()["meeting_id"] == second.json()["meeting_id"]

    changed = await api.post("/api/meetings", {**body, "title": "Twice"}, key)
    assert changed.status_code == 422
    assert changed.json()["error"]["code"] == "idempotency_key_reused"

    listed = (await api.get("/api/meetings")).json()
    assert [m["title"] for m in listed] == ["Once"]
    await api.close()


async def test_bad_http_input_is_refused_with_clear_errors(twin: Twin) -> None:
    api = Api(twin.base_url)
    await api.sign_up(f"bad-{uuid.uuid4().hex[:6]}@example.com")
    good = {"title": "T", "start": "2027-02-01T10:00", "timezone": "UTC", "duration_minutes": 30}

    malformed = await api.http.post(
        "/api/meetings",
        content=b"{not json",
        headers={**api._headers(), "content-type": "application/json"},
    )
    assert malformed.status_code == 422 and malformed.json()["error"]["code"] == "invalid_input"

    for bad in (
        {**good, "duration_minutes": "30"},
        {**good, "waiting_room": "yes"},
        {**good, "timezone": "Nowhere/City"},
        {**good, "rrule": "FREQ=SECONDLY"},
        {**good, "surprise": 1},
        {**good, "duration_minutes": 0},
    ):
        response = await api.post("/api/meetings", bad)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["error"]["message"]

    api.token = "forged.token.value"
    assert (await api.post("/api/meetings", good)).status_code == 401
    api.token = None
    unauthenticated = await api.post("/api/meetings", good)
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["www-authenticate"] == "Bearer"

    assert (await api.get("/api/meetings/nosuchmeet/public")).status_code == 404
    await api.close()


async def test_guest_join_checks_passcode_and_is_idempotent(twin: Twin) -> None:
    host = Api(twin.base_url)
    await host.sign_up(f"pass-{uuid.uuid4().hex[:6]}@example.com")
    meeting = await host.create_meeting(passcode="s3cret")
    guest = Api(twin.base_url)
    path = f"/api/meetings/{meeting['meeting_id']}/join"
    wrong = await guest.post(path, {"display_name": "Bob", "passcode": "nope"})
    assert wrong.status_code == 403 and wrong.json()["error"]["message"] == "wrong passcode"
    key = {"Idempotency-Key": f"join-{uuid.uuid4().hex}"}
    a = await guest.post(path, {"display_name": "Bob", "passcode": "s3cret"}, key)
    b = await guest.post(path, {"display_name": "Bob", "passcode": "s3cret"}, key)
    assert a.status_code == 200 and a.json() == b.json()
    grant = a.json()
    assert grant["role"] == "attendee" and grant["ws_url"] == twin.ws_url

    rejoin = await guest.post(
        f"/api/meetings/{meeting['meeting_id']}/rejoin",
        {"participant_id": grant["participant_id"], "resume_token": grant["resume_token"]},
    )
    assert rejoin.status_code == 200 and rejoin.json()["participant_id"] == grant["participant_id"]
    forged = await guest.post(
        f"/api/meetings/{meeting['meeting_id']}/rejoin",
        {"participant_id": grant["participant_id"], "resume_token": "x" * 40},
    )
    assert forged.status_code == 401
    await host.close()
    await guest.close()


async def test_host_edits_and_deletes_a_meeting_and_others_cannot(twin: Twin) -> None:
    api = Api(twin.base_url)
    await api.sign_up(f"crud-{uuid.uuid4().hex[:6]}@example.com")
    meeting = await api.create_meeting(title="Draft", timezone="America/New_York")
    path = f"/api/meetings/{meeting['meeting_id']}"
    body = {
        "title": "Final",
        "start": "2027-03-10T15:30",
        "timezone": "Asia/Kolkata",
        "duration_minutes": 90,
        "rrule": "FREQ=DAILY;COUNT=3",
        "waiting_room": True,
    }
    updated = await api.http.put(path, json=body, headers=api._headers())
    assert updated.status_code == 200, updated.text
    got = (await api.get(path)).json()
    assert (got["title"], got["timezone"], got["start"], got["rrule"], got["waiting_room"]) == (
        "Final",
        "Asia/Kolkata",
        "2027-03-10T15:30",
        "FREQ=DAILY;COUNT=3",
        True,
    )
    assert got["next_occurrences"][0]["start_utc"] == "2027-03-10T10:00:00Z"

    stranger = Api(twin.base_url)
    await stranger.sign_up(f"str-{uuid.uuid4().hex[:6]}@example.com")
    assert (await stranger.get(path)).status_code == 404
    assert (
        await stranger.http.put(path, json=body, headers=stranger._headers())
    ).status_code == 404
    assert (await stranger.http.delete(path, headers=stranger._headers())).status_code == 404

    assert (await api.http.delete(path, headers=api._headers())).status_code == 204
    assert (await api.get(path)).status_code == 404
    assert (await api.get("/api/meetings")).json() == []
    await api.close()
    await stranger.close()
