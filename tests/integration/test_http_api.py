"""Accounts, scheduling and joining over real HTTP against the twin."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import icalendar
import jwt
from boto3.dynamodb.types import TypeSerializer

from tests.integration.client import Api, new_guest_key
from tests.integration.conftest import Twin

_serializer = TypeSerializer()


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


async def test_refresh_token_rotates_and_is_spent_after_its_reuse_interval(twin: Twin) -> None:
    """A refresh rotates the token. The old one still works for 30 s after its first use, at
    most 3 more times (a page that left while its refresh was in flight never stored the new
    one), then never again; a signed-out token is dead at once."""
    api = Api(twin.base_url)
    session = await api.sign_up(f"rot-{uuid.uuid4().hex[:6]}@example.com")
    old = {"refresh_token": session["refresh_token"]}
    first = await api.post("/api/auth/refresh", old)
    assert first.status_code == 200
    assert first.json()["refresh_token"] != old["refresh_token"]
    reused = [(await api.post("/api/auth/refresh", old)).status_code for _ in range(4)]
    assert reused == [200, 200, 200, 401], reused
    # Past the interval, even a token with reuses left is refused.
    other = await api.post("/api/auth/refresh", {"refresh_token": first.json()["refresh_token"]})
    assert other.status_code == 200
    twin.local.set_clock_offset(31)
    try:
        late = await api.post("/api/auth/refresh", {"refresh_token": first.json()["refresh_token"]})
    finally:
        twin.local.set_clock_offset(0)
    assert late.status_code == 401
    assert late.json()["error"]["code"] == "unauthenticated"
    # Signing out ends a token at once: no reuse interval.
    latest = {"refresh_token": other.json()["refresh_token"]}
    assert (await api.post("/api/auth/signout", latest)).status_code == 204
    assert (await api.post("/api/auth/refresh", latest)).status_code == 401
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
    await host.join(meeting["meeting_id"], "Host")  # starts the session
    guest = Api(twin.base_url)
    path = f"/api/meetings/{meeting['meeting_id']}/join"
    me = new_guest_key()
    wrong = await guest.post(path, {"display_name": "Bob", "passcode": "nope", "guest_key": me})
    assert wrong.status_code == 403 and wrong.json()["error"]["message"] == "wrong passcode"
    keyless = await guest.post(path, {"display_name": "Bob", "passcode": "s3cret"})
    assert keyless.status_code == 422 and "guest_key" in keyless.json()["error"]["message"]
    key = {"Idempotency-Key": f"join-{uuid.uuid4().hex}"}
    body = {"display_name": "Bob", "passcode": "s3cret", "guest_key": me}
    a = await guest.post(path, body, key)
    b = await guest.post(path, body, key)
    assert a.status_code == 200 and a.json() == b.json()
    grant = a.json()
    assert grant["role"] == "attendee" and grant["ws_url"] == twin.ws_url
    # The same key from another guest is that guest's own join, never Bob's credentials.
    other = await guest.post(path, {**body, "guest_key": new_guest_key()}, key)
    assert other.status_code == 200, other.text
    assert other.json()["participant_id"] != grant["participant_id"]
    assert {other.json()["join_token"], other.json()["resume_token"]}.isdisjoint(
        {grant["join_token"], grant["resume_token"]}
    )

    rejoin_path = f"/api/meetings/{meeting['meeting_id']}/rejoin"
    resume = {
        "session_id": grant["session_id"],
        "participant_id": grant["participant_id"],
        "resume_token": grant["resume_token"],
    }
    first = await guest.post(rejoin_path, resume)
    assert first.status_code == 200 and first.json()["participant_id"] == grant["participant_id"]
    # Its answer "lost": the very same request gets the same next resume token.
    again = await guest.post(rejoin_path, resume)
    assert again.status_code == 200
    assert again.json()["resume_token"] == first.json()["resume_token"]
    # Once the next token is used, the one before it no longer works.
    used = await guest.post(rejoin_path, {**resume, "resume_token": first.json()["resume_token"]})
    assert used.status_code == 200
    assert (await guest.post(rejoin_path, resume)).status_code == 401
    forged = await guest.post(rejoin_path, {**resume, "resume_token": "x" * 40})
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


_GOOD = {"title": "T", "start": "2027-02-01T10:00", "timezone": "UTC", "duration_minutes": 30}


async def _raw(api: Api, method: str, path: str, content: bytes) -> httpx.Response:
    """A request with exactly these body bytes (httpx's json= cannot carry every input)."""
    headers = api._headers({"content-type": "application/json"})
    return await api.http.request(method, path, content=content, headers=headers)


def _assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code and body["error"]["message"], body


async def test_bad_recurrence_rules_are_refused_before_anything_is_stored(twin: Twin) -> None:
    api = Api(twin.base_url)
    await api.sign_up(f"rule-{uuid.uuid4().hex[:6]}@example.com")
    for fields in (
        {"rrule": "FREQ=DAILY;INTERVAL=0"},  # dateutil never returned: the request hung
        {"rrule": "FREQ=DAILY;INTERVAL=-1"},  # 500 after the meeting was stored
        {"rrule": "FREQ=DAILY;COUNT=0"},
        {"rrule": "FREQ=DAILY;COUNT=-5"},
        {"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=31"},  # never happens
        {"rrule": "FREQ=WEEKLY;UNTIL=20200101T000000Z"},  # ends before it starts
        {"start": "0001-01-01T00:30", "timezone": "Asia/Tokyo"},  # OverflowError: 500
        {"start": "9999-12-31T23:30", "timezone": "America/New_York"},
        {"start": "0001-01-01T00:00+00:00", "timezone": "America/New_York"},
    ):
        started = time.monotonic()
        response = await api.post("/api/meetings", {**_GOOD, **fields})
        _assert_error(response, 422, "invalid_input")
        assert time.monotonic() - started < 5, fields
    assert (await api.get("/api/meetings")).json() == []
    await api.close()


def _put_meeting(twin: Twin, host_id: str, meeting_id: str, **fields: Any) -> None:
    """A META item as an older version (or a person with the console) may have written it."""
    item: dict[str, Any] = {
        "pk": f"M#{meeting_id}",
        "sk": "META",
        "meeting_id": meeting_id,
        "host_id": host_id,
        "title": "Old",
        "kind": "meeting",
        "start_local": "2027-01-04T09:00",
        "start_utc": "2027-01-04T09:00:00Z",
        "timezone": "UTC",
        "duration_minutes": 30,
        "rrule": None,
        "passcode": None,
        "waiting_room": False,
        "created_at": 1_800_000_000,
        "updated_at": 1_800_000_000,
        "locked": False,
        "ended_at": None,
        "video_slots": 9,
        "seq": 0,
        **fields,
    }
    twin.local.dynamodb_client().put_item(
        TableName=twin.local.table_names["MEETINGS_TABLE"],
        Item={k: _serializer.serialize(v) for k, v in item.items()},
    )


async def test_a_bad_stored_schedule_degrades_for_that_meeting_only(twin: Twin) -> None:
    api = Api(twin.base_url)
    session = await api.sign_up(f"old-{uuid.uuid4().hex[:6]}@example.com")
    good = await api.create_meeting(title="Good", start="2027-01-05T09:00")
    broken: dict[str, dict[str, Any]] = {
        "hangs": {"rrule": "FREQ=DAILY;INTERVAL=0"},
        "negative": {"rrule": "FREQ=DAILY;INTERVAL=-1"},
        "nocount": {"rrule": "FREQ=DAILY;COUNT=0"},
        "yearone": {"start_local": "0001-01-01T00:30", "timezone": "Asia/Tokyo"},
        "nozone": {"timezone": "Mars/Olympus"},
        "numbers": {"timezone": 7, "rrule": 5, "duration_minutes": 0},  # by hand, any types
    }
    for suffix, fields in broken.items():
        _put_meeting(twin, session["user_id"], f"bad{suffix}", **fields)

    started = time.monotonic()
    listed = await api.get("/api/meetings")
    assert listed.status_code == 200, listed.text
    assert time.monotonic() - started < 5
    by_id = {m["meeting_id"]: m for m in listed.json()}
    # The good one first, with its times; each broken one listed after it, flagged, no times.
    assert listed.json()[0]["meeting_id"] == good["meeting_id"]
    assert by_id[good["meeting_id"]]["schedule_error"] is None
    for suffix in broken:
        meeting = by_id[f"bad{suffix}"]
        assert meeting["next_occurrences"] == [] and meeting["schedule_error"], meeting

        path = f"/api/meetings/bad{suffix}"
        got = await api.get(path)
        assert got.status_code == 200 and got.json()["schedule_error"], got.text
        public = await api.get(f"{path}/public")
        assert public.status_code == 200 and public.json()["next_occurrences"] == []
        _assert_error(await api.get(f"{path}/invite.ics"), 409, "conflict")
        _assert_error(await api.get(f"{path}/occurrences"), 409, "conflict")

    # The host can repair one and delete another.
    fixed = await api.http.put(
        "/api/meetings/badhangs",
        json={**_GOOD, "rrule": "FREQ=DAILY;INTERVAL=2"},
        headers=api._headers(),
    )
    assert fixed.status_code == 200 and fixed.json()["schedule_error"] is None, fixed.text
    assert (
        await api.http.delete("/api/meetings/badnozone", headers=api._headers())
    ).status_code == 204
    remaining = {m["meeting_id"] for m in (await api.get("/api/meetings")).json()}
    assert "badnozone" not in remaining and "badhangs" in remaining
    await api.close()


async def test_every_http_error_has_the_project_shape(twin: Twin) -> None:
    api = Api(twin.base_url)
    await api.sign_up(f"shape-{uuid.uuid4().hex[:6]}@example.com")
    meeting = await api.create_meeting()
    deep = b"[" * 20_000 + b"]" * 20_000

    # Bodies FastAPI cannot read answered {"detail": ...} with 400.
    _assert_error(
        await _raw(api, "POST", "/api/meetings", b'{"title": "\xff\xfe"}'), 422, "invalid_input"
    )
    _assert_error(await _raw(api, "POST", "/api/meetings", deep), 422, "invalid_input")
    _assert_error(
        await _raw(api, "POST", "/api/meetings", b'{"title": "' + b"9" * 5000 + b'"}'),
        422,
        "invalid_input",
    )
    _assert_error(
        await _raw(api, "POST", "/api/meetings", b'{"duration_minutes": ' + b"9" * 5000 + b"}"),
        422,
        "invalid_input",
    )
    _assert_error(await _raw(api, "POST", "/api/auth/signin", deep), 422, "invalid_input")
    # No such route, wrong method.
    _assert_error(await api.get("/api/nothing/here"), 404, "not_found")
    _assert_error(
        await api.http.patch("/api/meetings", headers=api._headers()), 405, "method_not_allowed"
    )
    # Ids that cannot name a meeting (DynamoDB, not moto, refuses a key over 2 KB with a 500).
    _assert_error(await api.get("/api/meetings/" + "a" * 3000), 404, "not_found")
    _assert_error(
        await api.get(f"/api/meetings/{meeting['meeting_id']}%0A/public"), 404, "not_found"
    )
    await api.close()


async def test_lone_surrogates_are_refused_on_every_text_field(twin: Twin) -> None:
    host = Api(twin.base_url)
    session = await host.sign_up(f"sur-{uuid.uuid4().hex[:6]}@example.com")
    meeting = await host.create_meeting()
    mid = meeting["meeting_id"]
    before = twin.meeting_items(mid)
    bodies: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/api/auth/signup", {"email": "a@example.com", "password": "p" * 12, "name": "N"}),
        ("POST", "/api/auth/signin", {"email": session["email"], "password": "correct horse 1"}),
        ("POST", "/api/auth/refresh", {"refresh_token": session["refresh_token"]}),
        ("POST", "/api/auth/signout", {"refresh_token": session["refresh_token"]}),
        ("POST", "/api/meetings", {**_GOOD, "rrule": "FREQ=DAILY", "passcode": "1234"}),
        ("PUT", f"/api/meetings/{mid}", {**_GOOD, "rrule": "FREQ=DAILY", "passcode": "1234"}),
        (
            "POST",
            f"/api/meetings/{mid}/join",
            {"display_name": "Ann", "passcode": "1234", "guest_key": "g" * 32},
        ),
        (
            "POST",
            f"/api/meetings/{mid}/rejoin",
            {"session_id": "s_0123456789", "participant_id": "p_1", "resume_token": "x" * 20},
        ),
    ]
    for method, path, body in bodies:
        for field, value in body.items():
            if not isinstance(value, str):
                continue
            for bad in (value + "\ud800", "\udfff" + value, "\ud83d"):
                content = json.dumps({**body, field: bad}).encode()  # "\ud800" as a JSON escape
                response = await _raw(host, method, path, content)
                _assert_error(response, 422, "invalid_input")
    # Nothing changed: the refresh token still works once, the meeting is as it was.
    assert twin.meeting_items(mid) == before
    assert (
        await host.post("/api/auth/refresh", {"refresh_token": session["refresh_token"]})
    ).status_code == 200
    await host.close()


async def test_names_and_titles_refuse_invisible_and_reordering_characters(twin: Twin) -> None:
    api = Api(twin.base_url)
    await api.sign_up(f"names-{uuid.uuid4().hex[:6]}@example.com")
    meeting = await api.create_meeting()
    await api.join(meeting["meeting_id"], "Host")  # starts the session
    path = f"/api/meetings/{meeting['meeting_id']}/join"

    def guest(name: str) -> dict[str, str]:
        return {"display_name": name, "guest_key": new_guest_key()}

    for name in (
        "Ann\x7f",
        "Ann\x85",
        "Ann\x9b",
        "\u202eAnn",
        "Ann\u2066x",
        "\u200b",
        "\u200d\u200c",
        "\ufeffAnn",
        "Ann\ue000",
        "Ann\U000e0001",
    ):
        _assert_error(await api.http.post(path, json=guest(name)), 422, "invalid_input")
        _assert_error(
            await api.post("/api/meetings", {**_GOOD, "title": name}), 422, "invalid_input"
        )
    # What people's names need still works: accents, scripts with joiners, emoji sequences.
    for name in (
        "Zoë Ångström",
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
        "👩\u200d💻 Dev",
    ):
        joined = await api.http.post(path, json=guest(name))
        assert joined.status_code == 200 and joined.json()["name"] == name, joined.text
    await api.close()
