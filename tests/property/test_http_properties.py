"""Property-based tests of every HTTP endpoint's input against a real twin, over real HTTP.

Hypothesis generates each endpoint's body: arbitrary JSON shapes, strings from the whole
Unicode range (lone surrogates, controls, bidirectional overrides, zero-width characters),
numbers at and past the limits (NaN and infinities too, which Python's JSON reader accepts),
oversize values, mixed with the model's real field names and plausible values (real zones,
recurrence rules good and bad, the real meeting, participant and tokens), so that validation
and the paths behind it are both reached. A second generator sends raw bytes (not UTF-8,
CESU-8 surrogates, UTF-16, 40,000-deep nesting, 5,000-digit numbers, truncated JSON); a third
fuzzes path ids (meetings and their sessions), query values (`count`, `part`, `limit`,
`cursor`) and methods; a fourth the bearer token (`/api/auth/me`). Joins carry guest
identities (new, repeated, malformed) and `Idempotency-Key`s (new, repeated, malformed).

Why a twin and not the app in-process: the twin runs the same Mangum handler on the same
payload-2.0 events, and adds what sits in front of it in AWS (non-UTF-8 bodies base64-encoded,
the 10 MB limit, the function's timeout as a 503), at about 5 ms a request on loopback, a few
ms more than calling the handler directly: the time goes to DynamoDB either way.

The properties, for every example:
- an answer within PER_REQUEST_SECONDS (a hang fails the example instead of the suite);
- never a 5xx; every error is the project's `{"error": {"code", "message"}}` with a known code;
- a refused request leaves every stored item (meetings, accounts, idempotency records) as it
  was; an accepted one has the effect it says (what it stored reads back, names are clean,
  schedules valid; a join adds exactly one participant per person, and a join repeated with
  its `Idempotency-Key` gets the very same answer).

The host's access token is refreshed before it expires (15 minutes), with a session of its
own, so a long run does not turn into 401s.

Examples are derandomized with no example database, so CI runs the same cases every time;
`HYPOTHESIS_PROFILE=long` runs ten times as many.
"""

from __future__ import annotations

import itertools
import json
import os
import time
import unicodedata
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest
from boto3.dynamodb.types import TypeDeserializer
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from infra.twin.server import TwinOptions
from tests.integration.conftest import Twin, _start
from townhall.meetings.joining import guest_participant_id
from townhall.model.schedule import FIRST_YEAR, LAST_START_YEAR, parse_rrule
from townhall.routes import SUBPROTOCOL

# Codes the HTTP API answers with (functions/townhall/api/app.py); anything else is a defect,
# and so is "internal_error", which comes only with a 500.
CODES = {
    "invalid_input",
    "unauthenticated",
    "forbidden",
    "not_found",
    "conflict",
    "gone",
    "idempotency_key_reused",
    "method_not_allowed",
    "unsupported_media_type",
}
PER_REQUEST_SECONDS = 10.0  # the HTTP function's timeout is 15 s: a hang shows well before
_SCALE = 10 if os.environ.get("HYPOTHESIS_PROFILE") == "long" else 1
# The long profile runs for tens of minutes per test: past pytest-timeout's 5 minute default.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600 if _SCALE > 1 else 300)]
# An access token lives 15 minutes: the host's is refreshed once it is this old.
TOKEN_FRESH_SECONDS = 10 * 60


def _settings(examples: int) -> settings:
    # Every setting that matters is explicit: another module may load a profile at import.
    return settings(
        max_examples=examples * _SCALE,
        derandomize=True,
        database=None,
        deadline=None,  # PER_REQUEST_SECONDS bounds each request instead (argon2 is slow)
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


# -- the twin and what the examples share ------------------------------------------------------

_deserialize = TypeDeserializer().deserialize
_fresh = itertools.count()
PASSWORD = "correct horse 1"
PASSCODE = "4321"


# Guest identities the join examples use more than once (not Gus's, whose resume token the
# rejoin examples hold: a join rotates it).
GUEST_KEYS = {"<guest-1>": "guest-one-" + "1" * 20, "<guest-2>": "guest-two-" + "2" * 20}
REPEATED_KEY = "join-again-0001"


@dataclass(repr=False)
class Env:
    twin: Twin
    http: httpx.Client
    access_token: str
    email: str
    refresh_token: str  # the examples' own: they rotate it and sign it out
    edit_id: str  # a meeting the PUT examples may change
    join_id: str  # a meeting with a passcode that only joins touch
    session_id: str  # the join meeting's running session
    cursor: str  # a real cursor of the join meeting's sessions
    participant_id: str
    resume_token: str
    host_refresh: str = ""  # the session that keeps `token` fresh, which no example touches
    fresh_until: float = 0.0
    state: list[str] = field(default_factory=list)
    cases: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    # (who, Idempotency-Key) -> (the join's payload, its answer)
    join_answers: dict[tuple[str, str], tuple[dict[str, Any], Any]] = field(default_factory=dict)
    # The last join accepted with an Idempotency-Key, as sent: body, signed in, headers.
    last_keyed_join: tuple[Any, bool, dict[str, str]] | None = None
    # One DynamoDB client for every snapshot: making a boto3 client costs ~80 ms, more than
    # the request an example sends.
    db: Any = None

    @property
    def token(self) -> str:
        """The host's access token, refreshed before it expires."""
        if time.monotonic() > self.fresh_until:
            response = self.http.post(
                "/api/auth/refresh", json={"refresh_token": self.host_refresh}
            )
            assert response.status_code == 200, response.text
            session = response.json()
            self.access_token, self.host_refresh = session["access_token"], session["refresh_token"]
            self.fresh_until = time.monotonic() + TOKEN_FRESH_SECONDS
            # The refresh rotated a stored token: the state the examples compare against.
            self.state = _snapshot(self)
        return self.access_token


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    yield from _start(tmp_path_factory, TwinOptions())


@pytest.fixture(scope="module")
def env(twin: Twin) -> Iterator[Env]:
    http = httpx.Client(base_url=twin.base_url, timeout=PER_REQUEST_SECONDS)
    email = f"host-{next(_fresh)}-{time.time_ns()}@example.com"
    session = http.post(
        "/api/auth/signup", json={"email": email, "password": PASSWORD, "name": "Hana Host"}
    ).json()
    auth = {"authorization": f"Bearer {session['access_token']}"}
    schedule = {"start": "2027-01-04T09:00", "timezone": "Europe/Paris", "duration_minutes": 30}
    edit = http.post("/api/meetings", json={"title": "Edit me", **schedule}, headers=auth).json()
    target = http.post(
        "/api/meetings",
        json={"title": "Join me", "passcode": PASSCODE, "rrule": "FREQ=WEEKLY", **schedule},
        headers=auth,
    ).json()
    # The host starts a session, so that guests' joins are answered (not the lobby's 409), and
    # stays in it: a session nobody is connected to counts as abandoned after the reconnect
    # window (meetings/liveness.py), which a slow run of the tests before the joins outlasts.
    hosting = http.post(f"/api/meetings/{target['meeting_id']}/join", json={}, headers=auth)
    host_socket = _present(twin, hosting.json())
    grant = http.post(
        f"/api/meetings/{target['meeting_id']}/join",
        json={"display_name": "Gus", "passcode": PASSCODE, "guest_key": "g" * 32},
    ).json()
    sessions = http.get(
        f"/api/meetings/{target['meeting_id']}/sessions?limit=1", headers=auth
    ).json()
    host = http.post("/api/auth/signin", json={"email": email, "password": PASSWORD}).json()
    shared = Env(
        twin=twin,
        http=http,
        access_token=host["access_token"],
        email=email,
        refresh_token=session["refresh_token"],
        edit_id=edit["meeting_id"],
        join_id=target["meeting_id"],
        session_id=grant["session_id"],
        cursor=sessions["next_cursor"] or "",
        participant_id=grant["participant_id"],
        resume_token=grant["resume_token"],
        host_refresh=host["refresh_token"],
        fresh_until=time.monotonic() + TOKEN_FRESH_SECONDS,
    )
    shared.state = _snapshot(shared)
    started = time.monotonic()
    yield shared
    print(
        f"\nHTTP property cases: {sum(shared.cases.values())} "
        f"({sum(shared.accepted.values())} accepted) in {time.monotonic() - started:.1f} s: "
        + ", ".join(f"{k} {v}/{shared.accepted[k]}" for k, v in sorted(shared.cases.items()))
    )
    host_socket.close()
    http.close()


def _present(twin: Twin, grant: dict[str, Any]) -> ClientConnection:
    """A participant connected and joined over the WebSocket API, for as long as it is open."""
    socket = connect(
        f"{twin.ws_url}?meeting={grant['meeting_id']}",
        subprotocols=[Subprotocol(SUBPROTOCOL), Subprotocol(grant["join_token"])],
        open_timeout=10,
    )
    socket.send(json.dumps({"action": "join", "id": "host-join"}))
    for _ in range(50):  # bounded: events may come before the reply
        message = json.loads(socket.recv(timeout=10))
        if message.get("type") == "reply" and message.get("id") == "host-join":
            assert message["ok"] is True, message
            return socket
    raise AssertionError("no reply to the host's join")


def _snapshot(env: Env) -> list[str]:
    """Every item of the tables the HTTP API writes, as sorted canonical JSON."""
    if env.db is None:
        env.db = env.twin.local.dynamodb_client()
    db = env.db
    tables = env.twin.local.table_names
    items: list[str] = []
    for name in ("MEETINGS_TABLE", "ACCOUNTS_TABLE", "IDEMPOTENCY_TABLE"):
        for page in db.get_paginator("scan").paginate(TableName=tables[name], ConsistentRead=True):
            for item in page["Items"]:
                plain = {k: _deserialize(v) for k, v in item.items()}
                items.append(f"{name} " + json.dumps(plain, sort_keys=True, default=str))
    return sorted(items)


# -- one exchange, and what must hold for it -------------------------------------------------


def _exchange(
    env: Env,
    label: str,
    method: str,
    path: str,
    content: bytes | None = None,
    *,
    headers: dict[str, str] | None = None,
    authorized: bool = True,
    on_accept: Callable[[httpx.Response], None] | None = None,
) -> httpx.Response:
    sent = dict(headers or {})
    if authorized:
        sent["authorization"] = f"Bearer {env.token}"
    started = time.monotonic()
    try:
        response = env.http.request(method, path, content=content, headers=sent)
    except httpx.TimeoutException:
        pytest.fail(f"{method} {path}: no answer within {PER_REQUEST_SECONDS} s")
    elapsed = time.monotonic() - started
    env.cases[label] += 1
    assert response.status_code < 500, (method, path, content, response.text)
    assert elapsed < PER_REQUEST_SECONDS, (method, path, elapsed)
    if response.status_code >= 400:
        # A path whose dot segments resolve outside /api/ (httpx resolves them, as browsers
        # and CloudFront do) is not the API's to answer: in AWS CloudFront sends it to the
        # web app's bucket. Only what reaches the API must answer in the project's shape.
        if response.request.url.path.startswith("/api/") and response.request.url.path != "/api/":
            _assert_project_error(response)
        assert _snapshot(env) == env.state, f"refused {method} {path} changed stored state"
    else:
        env.accepted[label] += 1
        if on_accept is not None:
            on_accept(response)
        env.state = _snapshot(env)
    return response


def _assert_project_error(response: httpx.Response) -> None:
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, response.text
    error = body["error"]
    assert set(error) == {"code", "message"}, response.text
    assert error["code"] in CODES, response.text
    assert isinstance(error["message"], str) and error["message"], response.text


def _json(value: Any) -> bytes:
    # ensure_ascii: a lone surrogate travels as a "\ud800" escape; NaN and Infinity as Python
    # writes them (its reader accepts them too).
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


_JSON_HEADERS = {"content-type": "application/json"}


def _is_clean_name(name: str) -> bool:
    refused = {"Cc", "Cf", "Cs", "Co", "Cn"}
    return (
        0 < len(name) <= 200
        and name == name.strip()
        and "  " not in name
        and all(unicodedata.category(c) not in refused or c in "\u200c\u200d" for c in name)
    )


# -- values ------------------------------------------------------------------------------------

any_char = st.characters(exclude_categories=())  # surrogates (Cs) included
nasty_char = st.sampled_from(
    [
        "\x00",
        "\t",
        "\n",
        "\x1b",
        "\x1f",
        "\x7f",
        "\x85",
        "\x9b",
        "\u00ad",
        "\u061c",
        "\u200b",
        "\u200c",
        "\u200d",
        "\u200f",
        "\u202e",
        "\u2066",
        "\u3164",
        "\ufeff",
        "\ud800",
        "\udfff",
        "\ue000",
        "\U000e0001",
        "\u0378",
        "\u0301",
        "💣",
        "👩\u200d💻",
    ]
)
text = st.one_of(
    st.text(any_char, max_size=40),
    st.lists(st.one_of(nasty_char, st.sampled_from(list("Ann Lee"))), max_size=12).map("".join),
    st.tuples(st.one_of(any_char, nasty_char), st.integers(60, 3000)).map(lambda t: t[0] * t[1]),
)
number = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 2**31, 2**63, -(2**63) - 1, 10**300, -(10**300)]),
    st.floats(allow_nan=True, allow_infinity=True),
)
any_json = st.recursive(
    st.none() | st.booleans() | number | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
good_names = st.one_of(
    st.sampled_from(["Standup", "  Weekly   sync ", "Réunion été", "李小龍", "👩\u200d💻 Dev"]),
    st.text(st.characters(categories=["L", "N", "P", "S", "Zs", "Mn"]), min_size=1, max_size=60),
)
# A real name with one control, format, surrogate, private-use or unassigned character in it.
spiked_names = st.tuples(good_names, nasty_char, st.integers(0, 60)).map(
    lambda t: t[0][: t[2]] + t[1] + t[0][t[2] :]
)
bad_names = st.one_of(
    spiked_names,
    spiked_names,
    st.sampled_from(["", " ", "\u200b", "\u200d\u200c", "\u3164", "\u0301", "x" * 201]),
    text,
)
good_zones = st.sampled_from(
    [
        "UTC",
        "Europe/Paris",
        "America/New_York",
        "Asia/Kolkata",
        "Pacific/Kiritimati",
        "Etc/GMT+12",
        "Australia/Lord_Howe",
        "Pacific/Apia",
    ]
)
bad_zones = st.one_of(
    st.sampled_from(["Mars/Olympus", "../etc/passwd", "UTC\x00", "zone.tab", "", "a" * 65]), text
)
good_starts = st.datetimes(datetime(FIRST_YEAR, 1, 2), datetime(LAST_START_YEAR, 12, 30)).map(
    lambda d: d.isoformat(timespec="minutes")
)
bad_starts = st.one_of(
    st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31)).map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "0001-01-01T00:30",
            "9999-12-31T23:30",
            "0001-01-01T00:00+00:00",
            "9999-12-31T23:59:59+14:00",
            "1970-01-01T00:00+00:00",
            "2199-12-31T23:59-12:00",
            "2027-02-29T09:00",
            "2027-W01",
            "tomorrow",
        ]
    ),
    text,
)
_weekday = st.sampled_from(["MO", "TU", "WE", "TH", "FR", "SA", "SU"])


@st.composite
def good_rules(draw: st.DrawFn) -> str:
    """Rules within what we accept (a few still match nothing, and are refused)."""
    freq = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]))
    parts = [f"FREQ={freq}"]
    if draw(st.booleans()):
        parts.append(f"INTERVAL={draw(st.integers(1, 999))}")
    ends = draw(st.sampled_from(["none", "count", "until"]))
    if ends == "count":
        parts.append(f"COUNT={draw(st.integers(1, 999))}")
    elif ends == "until":
        parts.append(f"UNTIL={draw(st.integers(2030, 2299))}0101T000000Z")
    if draw(st.booleans()):
        days = draw(st.lists(_weekday, min_size=1, max_size=3, unique=True))
        if freq in ("MONTHLY", "YEARLY") and draw(st.booleans()):
            days = [f"{draw(st.sampled_from([1, 2, 3, -1]))}{d}" for d in days]
        parts.append("BYDAY=" + ",".join(days))
    if freq != "WEEKLY" and draw(st.booleans()):
        parts.append(f"BYMONTHDAY={draw(st.sampled_from([1, 15, 28, -1, 31]))}")
    if draw(st.booleans()):
        parts.append(f"BYMONTH={draw(st.integers(1, 12))}")
    return ";".join(draw(st.permutations(parts)))


rule_parts = st.one_of(
    st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY", "HOURLY", ""]).map(
        lambda f: f"FREQ={f}"
    ),
    st.integers(-2, 1001).map(lambda n: f"INTERVAL={n}"),
    st.integers(-5, 1000).map(lambda n: f"COUNT={n}"),
    st.sampled_from(["20270101T000000Z", "20200101T000000Z", "20270101", "99991231T235959Z"]).map(
        lambda u: f"UNTIL={u}"
    ),
    st.lists(st.tuples(st.integers(-54, 54) | st.none(), _weekday), min_size=1, max_size=3).map(
        lambda days: "BYDAY=" + ",".join(f"{'' if n is None else n}{d}" for n, d in days)
    ),
    st.lists(st.integers(-32, 32), min_size=1, max_size=3).map(
        lambda days: "BYMONTHDAY=" + ",".join(map(str, days))
    ),
    st.lists(st.integers(-1, 13), min_size=1, max_size=2).map(
        lambda months: "BYMONTH=" + ",".join(map(str, months))
    ),
    _weekday.map(lambda d: f"WKST={d}"),
)
bad_rules = st.one_of(
    st.sampled_from(
        [
            "FREQ=DAILY;INTERVAL=0",  # hung the API
            "FREQ=DAILY;INTERVAL=-1",  # 500 after the write
            "FREQ=DAILY;COUNT=0",
            "FREQ=DAILY;COUNT=-5",
            "FREQ=MONTHLY;BYMONTHDAY=31;BYMONTH=2",
            "FREQ=DAILY;BYMONTHDAY=31;BYMONTH=2",
            "FREQ=DAILY;INTERVAL=7;BYDAY=TU",
            "FREQ=MONTHLY;BYDAY=MO,1FR",
        ]
    ),
    st.lists(rule_parts, min_size=1, max_size=4).map(";".join),
    text,
)


@dataclass(frozen=True)
class Field:
    good: st.SearchStrategy[Any]
    bad: st.SearchStrategy[Any]


@st.composite
def bodies(draw: st.DrawFn, fields: dict[str, Field]) -> Any:
    """A JSON body. Mostly the model's fields with plausible values and one thing wrong (a
    field bad, of another type, missing, or an unknown one added), or nothing wrong, or many
    things; sometimes any JSON value at all."""
    mode = draw(st.sampled_from(["good", "one", "one", "one", "mixed", "any"]))
    if mode == "any":
        return draw(any_json)
    body: dict[Any, Any] = {}
    for name, value in fields.items():
        bad = mode == "mixed" and draw(st.booleans())
        body[name] = draw(st.one_of(value.bad, any_json) if bad else value.good)
    if mode == "one":
        name = draw(st.sampled_from(sorted(fields)))
        change = draw(st.sampled_from(["bad", "bad", "type", "missing", "extra"]))
        if change == "bad":
            body[name] = draw(fields[name].bad)
        elif change == "type":
            body[name] = draw(any_json)
        elif change == "missing":
            del body[name]
        else:
            body[draw(text)] = draw(any_json)
    return body


def _real(value: Any, env: Env) -> Any:
    """Markers that stand for what only exists at run time."""
    replacements = {
        "<host-email>": env.email,
        "<fresh-email>": f"p{next(_fresh)}-{time.time_ns()}@example.com",
        "<refresh>": env.refresh_token,
        "<participant>": env.participant_id,
        "<resume>": env.resume_token,
        "<session>": env.session_id,
        "<session-nl>": env.session_id + "\n",
        "<fresh-guest>": f"fresh-guest-{next(_fresh)}-{time.time_ns()}",
        **GUEST_KEYS,
    }
    if isinstance(value, dict):
        return {k: _real(v, env) for k, v in value.items()}
    return replacements.get(value, value) if isinstance(value, str) else value


MEETING_FIELDS = {
    "title": Field(good_names, bad_names),
    "start": Field(good_starts, bad_starts),
    "timezone": Field(good_zones, bad_zones),
    "duration_minutes": Field(
        st.integers(1, 1440), st.sampled_from([0, -1, 1441, 2**63, 10**300]) | any_json
    ),
    "rrule": Field(st.none() | good_rules(), bad_rules),
    "passcode": Field(
        st.none()
        | st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=4, max_size=32),
        st.sampled_from(["12", " 1234", "\u202e1234", "x" * 33]) | text,
    ),
    "waiting_room": Field(st.booleans(), st.sampled_from([0, 1, "true", None])),
    "kind": Field(st.sampled_from(["meeting", "webinar"]), st.sampled_from(["party", "", None])),
    "video_slots": Field(st.integers(1, 25), st.sampled_from([0, 26, -1, 2**40, 1.5, "9"])),
}


def _check_meeting(env: Env, meeting: dict[str, Any]) -> None:
    """What an accepted create or edit stored is valid, and reads back the same."""
    assert _is_clean_name(meeting["title"]), meeting
    assert FIRST_YEAR <= int(meeting["start"][:4]) <= LAST_START_YEAR, meeting
    assert meeting["schedule_error"] is None, meeting
    assert meeting["rrule"] is None or parse_rrule(meeting["rrule"]) is not None
    assert len(meeting["next_occurrences"]) <= 5
    got = env.http.get(
        f"/api/meetings/{meeting['meeting_id']}",
        headers={"authorization": f"Bearer {env.token}"},
    )
    assert got.status_code == 200, got.text
    assert {k: v for k, v in got.json().items() if k != "next_occurrences"} == {
        k: v for k, v in meeting.items() if k != "next_occurrences"
    }


# -- the properties ----------------------------------------------------------------------------


@_settings(200)
@given(
    body=bodies(MEETING_FIELDS),
    key=st.sampled_from([None, "fresh", "fresh", "bad key!", "short", "k" * 129]),
)
def test_create_meeting(env: Env, body: Any, key: str | None) -> None:
    headers = dict(_JSON_HEADERS)
    if key is not None:
        headers["idempotency-key"] = f"k-{next(_fresh)}-{time.time_ns()}" if key == "fresh" else key

    def accepted(response: httpx.Response) -> None:
        assert response.status_code == 201
        meeting = response.json()
        _check_meeting(env, meeting)
        deleted = env.http.delete(
            f"/api/meetings/{meeting['meeting_id']}",
            headers={"authorization": f"Bearer {env.token}"},
        )
        assert deleted.status_code == 204  # keeps the host's list, and each snapshot, short

    try:
        content = _json(body)
    except ValueError:  # an integer past 4,300 digits cannot be written; raw bytes cover it
        return
    _exchange(env, "create", "POST", "/api/meetings", content, headers=headers, on_accept=accepted)


@_settings(120)
@given(body=bodies(MEETING_FIELDS))
def test_update_meeting(env: Env, body: Any) -> None:
    def accepted(response: httpx.Response) -> None:
        assert response.status_code == 200
        _check_meeting(env, response.json())

    path = f"/api/meetings/{env.edit_id}"
    _exchange(env, "update", "PUT", path, _json(body), headers=_JSON_HEADERS, on_accept=accepted)


JOIN_FIELDS = {
    "display_name": Field(good_names, bad_names),
    "passcode": Field(st.just(PASSCODE), st.none() | st.just("1234") | text),
    "guest_key": Field(
        st.sampled_from(["<fresh-guest>", "<fresh-guest>", *GUEST_KEYS]),
        st.sampled_from(["short", "x" * 21, "k" * 129, "has spaces in it, 22+ chars", "é" * 30])
        | text,
    ),
}


def _participants(env: Env) -> set[str]:
    return {
        i["participant_id"] for i in env.twin.meeting_items(env.join_id) if i["sk"].startswith("P#")
    }


@_settings(120)
@given(
    body=bodies(JOIN_FIELDS),
    signed_in=st.booleans(),
    key=st.sampled_from([None, None, "fresh", REPEATED_KEY, REPEATED_KEY, "bad key!", "short"]),
    replay=st.integers(0, 4),
)
def test_join(env: Env, body: Any, signed_in: bool, key: str | None, replay: int) -> None:
    """Any join; and now and then the last one accepted with an Idempotency-Key again, as it
    was sent (a client retrying after a lost answer), which must get the very same answer."""
    body = _real(body, env)
    headers = dict(_JSON_HEADERS)
    if key is not None:
        headers["idempotency-key"] = f"k-{next(_fresh)}-{time.time_ns()}" if key == "fresh" else key
    if replay == 0 and env.last_keyed_join is not None:
        body, signed_in, headers = env.last_keyed_join
        key = headers["idempotency-key"]
    before = _participants(env)

    def accepted(response: httpx.Response) -> None:
        grant = response.json()
        assert grant["meeting_id"] == env.join_id and _is_clean_name(grant["name"]), grant
        assert grant["session_id"] == env.session_id, grant
        who = grant["participant_id"]
        if not signed_in:
            assert who == guest_participant_id(body["guest_key"]), (body, grant)
        # One participant per person: this one added if new, nobody else.
        assert _participants(env) == before | {who}, (body, grant)
        if key is not None:
            payload = {name: body.get(name) for name in JOIN_FIELDS}
            seen = env.join_answers.setdefault((who, headers["idempotency-key"]), (payload, grant))
            assert seen == (payload, grant), (seen, payload, grant)  # the first answer again
            env.last_keyed_join = (body, signed_in, headers)

    path = f"/api/meetings/{env.join_id}/join"
    _exchange(
        env,
        "join",
        "POST",
        path,
        _json(body),
        headers=headers,
        authorized=signed_in,
        on_accept=accepted,
    )


REJOIN_FIELDS = {
    "session_id": Field(
        st.sampled_from(["<session>", "<session>", None]),
        st.sampled_from(["s_0123456789", "", "x" * 65, "<session-nl>"]) | text,
    ),
    "participant_id": Field(st.just("<participant>"), st.just("p_0123456789abcdef") | text),
    "resume_token": Field(st.just("<resume>"), st.just("x" * 43) | text),
}


@_settings(60)
@given(body=bodies(REJOIN_FIELDS))
def test_rejoin(env: Env, body: Any) -> None:
    def accepted(response: httpx.Response) -> None:
        grant = response.json()
        assert grant["participant_id"] == env.participant_id
        assert grant["session_id"] == env.session_id
        env.resume_token = grant["resume_token"]  # rotated: the old one is spent

    path = f"/api/meetings/{env.join_id}/rejoin"
    content = _json(_real(body, env))
    _exchange(env, "rejoin", "POST", path, content, headers=_JSON_HEADERS, on_accept=accepted)


PASSWORDS = Field(st.just(PASSWORD), st.just("wrong horse 1") | text)


@_settings(40)
@given(
    body=bodies(
        {
            "email": Field(
                st.sampled_from(["<fresh-email>", " Fresh@Example.COM "]),
                st.sampled_from(["<host-email>", "a@b", "@example.com"]) | text,
            ),
            "password": PASSWORDS,
            "name": Field(good_names, bad_names),
        }
    )
)
def test_sign_up(env: Env, body: Any) -> None:
    def accepted(response: httpx.Response) -> None:
        session = response.json()
        assert _is_clean_name(session["name"]) and session["email"] == session["email"].lower()

    content = _json(_real(body, env))
    _exchange(
        env,
        "signup",
        "POST",
        "/api/auth/signup",
        content,
        headers=_JSON_HEADERS,
        authorized=False,
        on_accept=accepted,
    )


@_settings(40)
@given(
    body=bodies(
        {
            "email": Field(st.just("<host-email>"), st.just("<fresh-email>") | text),
            "password": PASSWORDS,
        }
    )
)
def test_sign_in(env: Env, body: Any) -> None:
    content = _json(_real(body, env))
    _exchange(
        env, "signin", "POST", "/api/auth/signin", content, headers=_JSON_HEADERS, authorized=False
    )


@_settings(40)
@given(
    body=bodies(
        {"refresh_token": Field(st.just("<refresh>"), st.sampled_from(["a.b", "."]) | text)}
    ),
    route=st.sampled_from(["refresh", "signout"]),
)
def test_refresh_and_sign_out(env: Env, body: Any, route: str) -> None:
    def accepted(response: httpx.Response) -> None:
        if route == "refresh":
            env.refresh_token = response.json()["refresh_token"]  # rotated

    content = _json(_real(body, env))
    _exchange(
        env,
        route,
        "POST",
        f"/api/auth/{route}",
        content,
        headers=_JSON_HEADERS,
        authorized=False,
        on_accept=accepted,
    )


BODY_ROUTES = [
    ("POST", "/api/auth/signup"),
    ("POST", "/api/auth/signin"),
    ("POST", "/api/auth/refresh"),
    ("POST", "/api/auth/signout"),
    ("POST", "/api/meetings"),
    ("PUT", "/api/meetings/{edit}"),
    ("POST", "/api/meetings/{join}/join"),
    ("POST", "/api/meetings/{join}/rejoin"),
]
raw_bodies = st.one_of(
    # Deep nesting, past the parser's recursion limit or below it.
    st.tuples(st.integers(1, 40_000), st.sampled_from([("[", "]"), ('{"a":', "}")])).map(
        lambda t: (t[1][0] * t[0] + "1" + t[1][1] * t[0]).encode()
    ),
    st.binary(max_size=64),  # mostly not UTF-8
    st.sampled_from(
        [
            b'{"title": "\xff\xfe"}',
            b'{"title": "\xed\xa0\x80"}',  # CESU-8 surrogate: json.loads lets it through
            '{"display_name": "Ann"}'.encode("utf-16"),
            b'\xef\xbb\xbf{"display_name": "Ann"}',
            b'{"duration_minutes": NaN}',
            b'{"duration_minutes": -Infinity}',
            b'{"title": "a", "title": 5}',
            b'{"title": ',
            b"",
            b"   ",
            b"null",
        ]
    ),
    st.integers(4_000, 10_000).map(lambda n: b'{"duration_minutes": ' + b"9" * n + b"}"),
    st.integers(1_000, 2_000_000).map(lambda n: b'{"title": "' + b"x" * n + b'"}'),
)


@_settings(150)
@given(
    route=st.sampled_from(BODY_ROUTES),
    content=raw_bodies,
    content_type=st.sampled_from(["application/json", "text/plain", None, "application/x+json"]),
)
def test_raw_bodies(
    env: Env, route: tuple[str, str], content: bytes, content_type: str | None
) -> None:
    method, template = route
    path = template.format(edit=env.edit_id, join=env.join_id)
    headers = {"content-type": content_type} if content_type else {}
    _exchange(env, "raw", method, path, content, headers=headers)


ids = st.one_of(
    st.just("<edit>"),
    st.just("<join>"),
    st.sampled_from(["nosuchmeet", "a" * 3000, "..", "%", "M#x", "x\n"]),
    text,
)
session_ids = st.one_of(
    st.just("<session>"),
    st.just("<session>"),
    st.sampled_from(["s_0123456789", "a" * 3000, "..", "%", "SESSION#x", "x\n"]),
    text,
)
MAX_URL_CHARS = 60_000
SUFFIXES = [
    "",
    "/occurrences",
    "/invite.ics",
    "/public",
    "/summary",
    "/summary.csv",
    "/join",
    "/sessions",
    "/sessions",
    "/sessions/{session}/summary",
    "/sessions/{session}/summary.csv",
]
QUERY_VALUES = {
    "count": ["1", "100", "0", "101", "-1", "9" * 5000, "x"],
    "part": ["attendance", "chat", "polls", "questions", "x", ""],
    "limit": ["1", "20", "50", "0", "51", "-1", "1.5", "9" * 5000],
    "cursor": ["<cursor>", "<cursor>", "<cursor>x", "U0VTU0lPTiMx", "=", "%00", "a" * 201],
}
query_pair = st.sampled_from(sorted(QUERY_VALUES)).flatmap(
    lambda name: st.one_of(st.sampled_from(QUERY_VALUES[name]), text).map(
        lambda value: (name, value)
    )
)
queries: st.SearchStrategy[list[tuple[str, str]]] = st.one_of(
    st.just([]), st.lists(query_pair, min_size=1, max_size=3)
)


def _path_part(value: str) -> str:
    return urllib.parse.quote(value.encode("utf-8", "surrogatepass"), safe="")


def _host_reads(suffix: str, query: list[tuple[str, str]]) -> Any:
    """An example of the host reading the shared meeting (the valid path of a route)."""
    return example(
        method="GET",
        meeting="<join>",
        suffix=suffix,
        session="<session>",
        query=query,
        signed_in=True,
    ).via("the host's read")


@_settings(150)
@given(
    method=st.sampled_from(["GET", "GET", "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
    meeting=ids,
    suffix=st.sampled_from(SUFFIXES),
    session=session_ids,
    query=queries,
    signed_in=st.booleans(),
)
@_host_reads("/sessions", [("limit", "1")])
@_host_reads("/sessions", [("limit", "50"), ("cursor", "<cursor>")])
@_host_reads("/sessions/{session}/summary", [])
@_host_reads("/sessions/{session}/summary.csv", [("part", "chat")])
@_host_reads("/summary.csv", [("part", "attendance")])
def test_paths_queries_and_methods(
    env: Env,
    method: str,
    meeting: str,
    suffix: str,
    session: str,
    query: list[tuple[str, str]],
    signed_in: bool,
) -> None:
    if method == "DELETE" and meeting in ("<edit>", "<join>"):
        meeting = "nosuchmeet"  # the shared meetings stay; deleting has its own tests
    real = {"<edit>": env.edit_id, "<join>": env.join_id}.get(meeting)
    session_part = env.session_id if session == "<session>" else _path_part(session)
    path = f"/api/meetings/{real or _path_part(meeting)}{suffix.format(session=session_part)}"
    if query:
        values = [
            (name, value.replace("<cursor>", env.cursor) if name == "cursor" else value)
            for name, value in query
        ]
        path += "?" + "&".join(f"{name}={_path_part(value)}" for name, value in values)
    # No client sends a URL past httpx's 64 KiB (API Gateway refuses far shorter ones): such
    # examples are not inputs the API can receive, so they are left out, not passed.
    assume(len(path) <= MAX_URL_CHARS)

    def accepted(response: httpx.Response) -> None:
        if suffix == "/sessions" and method == "GET":
            page = response.json()
            assert real is not None and set(page) == {"sessions", "next_cursor"}, page
            if real == env.join_id:
                assert {s["session_id"] for s in page["sessions"]} <= {env.session_id}, page

    _exchange(env, "paths", method, path, authorized=signed_in, on_accept=accepted)


bearer_tokens = st.one_of(
    st.sampled_from(["<access>", "<access>", "<refresh>", "", "a.b.c", "null", "<access>x"]),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=300),
    st.integers(100, 8000).map(lambda n: "e" * n),
)


@_settings(40)
@given(
    scheme=st.sampled_from(["Bearer", "Bearer", "bearer", "Basic", "Token", ""]),
    token=st.one_of(st.just("<access>"), st.none(), bearer_tokens),
    method=st.sampled_from(["GET", "GET", "GET", "POST", "DELETE"]),
)
@example(scheme="Bearer", token="<access>", method="GET").via("the host's own")
def test_me(env: Env, scheme: str, token: str | None, method: str) -> None:
    """Who the bearer token says: only a current access token is anyone."""
    headers = {}
    if token is not None:
        real = token.replace("<access>", env.token).replace("<refresh>", env.refresh_token)
        headers["authorization"] = f"{scheme} {real}".strip()

    def accepted(response: httpx.Response) -> None:
        assert (method, scheme.lower(), token) == ("GET", "bearer", "<access>"), response.text
        assert response.json()["email"] == env.email, response.text

    _exchange(
        env, "me", method, "/api/auth/me", headers=headers, authorized=False, on_accept=accepted
    )
