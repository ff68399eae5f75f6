"""Property-based tests of every signaling action against a real twin, over real WebSockets.

Hypothesis generates each action's `data`: arbitrary JSON shapes, strings from the whole
Unicode range (lone surrogates, controls, bidirectional overrides), numbers at and past the
limits (NaN and infinities too, which Python's JSON reader accepts), deep nesting and oversize
values, mixed with the action's real field names and plausible values (the real ids of the
meeting's participants, poll and question), so that both the validation and the paths behind
it are reached. Every action is sent, `join` too, in a meeting and in a webinar (where
`allow_talk` has a valid path, and attendees' refusals differ).

The properties:
- every message gets exactly one answer, a reply or an error with a documented code, within a
  bound (never "Internal server error", never silence);
- a refused message changes nothing stored for the meeting;
- the counting actions count exactly: each accepted chat stores exactly one message, each
  accepted vote or upvote moves the counts by exactly its choices, each accepted join (over
  HTTP) adds one participant per person and each accepted `join` (over the socket) admits
  exactly that participant and adds nobody, whatever else was refused around them.

The examples are derandomized (a fixed sequence, no example database), so CI sees the same
cases on every run; `HYPOTHESIS_PROFILE=long` runs many more.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import time
import unicodedata
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, find, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from infra.twin.server import TwinOptions
from tests.integration.client import new_guest_key
from tests.integration.conftest import Twin, _start
from townhall.routes import ACTIONS, SUBPROTOCOL

# Codes a client may be answered with (docs/signaling.md); anything else is a defect.
CODES = {
    "malformed_json",
    "unknown_action",
    "invalid_request_id",
    "invalid_input",
    "unauthenticated",
    "forbidden",
    "not_found",
    "conflict",
    "gone",
    "duplicate_request",
    "media_unavailable",
}
# The fields each action reads (docs/signaling.md); the generator mixes them with others.
FIELDS: dict[str, tuple[str, ...]] = {
    "mute": ("muted", "participant_id"),
    "camera": ("on", "participant_id"),
    "screenshare": ("on", "participant_id"),
    "hand": ("raised", "participant_id"),
    "chat": ("text", "to"),
    "react": ("emoji",),
    "admit": ("participant_id",),
    "deny": ("participant_id",),
    "remove": ("participant_id", "may_return"),
    "lock": ("locked",),
    "promote": ("participant_id",),
    "demote": ("participant_id",),
    "allow_talk": ("participant_id", "allowed"),
    "leave": ("successor",),
    "media_publish": ("sdp",),
    "media_answer": ("sdp",),
    "media_stalled": ("node_id",),
    "poll_create": ("question", "options", "multiple"),
    "poll_vote": ("poll_id", "choices"),
    "poll_close": ("poll_id",),
    "qa_ask": ("text",),
    "qa_upvote": ("question_id",),
    "qa_answer": ("question_id", "text"),
    "qa_dismiss": ("question_id",),
    "wb_stroke": ("color", "width", "points"),
    "wb_history": ("before",),
}
# Actions that would end the examples' shared meeting or take a participant out of it: they
# get arbitrary data only, never the real ids (their valid paths have tests of their own).
DISRUPTIVE = {"end", "leave", "remove", "deny", "poll_close", "qa_dismiss", "wb_clear", "lock"}
# Actions whose valid form ends the shared meeting or the sender's part in it.
ENDING = {"end", "leave"}
# Well-formed participant ids that name nobody in the examples' meetings.
ABSENT_IDS = ["p_0000000000000000", "nobody"]
REPLY_TIMEOUT_SECONDS = 20.0

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.register_profile(
    "ci",
    max_examples=60,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("long", parent=settings.get_profile("ci"), max_examples=2000)
settings.load_profile(PROFILE)
# The long profile runs for tens of minutes per test: past pytest-timeout's 5 minute default.
pytestmark = pytest.mark.timeout(3600 if PROFILE == "long" else 300)
# For the properties that set up a meeting of their own per example, and for the one that
# spreads its examples over every action.
fewer = settings(max_examples=max(10, settings().max_examples // 5))
more = settings(max_examples=settings().max_examples * 5)

# -- values --------------------------------------------------------------------------------

any_char = st.characters(exclude_categories=())  # surrogates (Cs) included
nasty_text = st.one_of(
    st.text(any_char, max_size=40),
    st.sampled_from(["", " ", "\u202e", "\u200b", "\x00", "\x7f", "\ud800", "\udfff", "💣"]),
    st.integers(4000, 5000).map(lambda n: "x" * n),
)
numbers = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 1e308, -0.0, 0.5]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, nasty_text)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(nasty_text, inner, max_size=6)
    ),
    max_leaves=25,
)
# Nesting past the interpreter's recursion limit cannot be built as Python values here: a
# sentinel string stands for it, and `encode` writes it out as that many nested arrays.
DEEP_SENTINEL = re.compile(r'"\\u0000deep:(\d+)"')
deep = st.integers(50, 20000).map(lambda depth: f"\x00deep:{depth}")


def encode(message: dict[str, Any]) -> str:
    text = json.dumps(message)  # ensure_ascii: lone surrogates go out as \ud800, as from a browser
    return DEEP_SENTINEL.sub(lambda m: "[" * int(m[1]) + "]" * int(m[1]), text)


@dataclass
class Room:
    """The examples' shared meeting: a host, an attendee and one of each collaboration item."""

    meeting_id: str
    host: ClientConnection
    attendee: ClientConnection
    ids: dict[str, str]
    kind: str = "meeting"


def plausible(room: Room, field: str) -> st.SearchStrategy[Any]:
    """Values a real client might send for a field, plus near misses."""
    ids = st.sampled_from([*room.ids.values(), "nobody", "p_0000000000000000"])
    by_field: dict[str, st.SearchStrategy[Any]] = {
        "participant_id": ids,
        "to": ids,
        "poll_id": st.sampled_from([room.ids["poll"], "nope"]),
        "question_id": st.sampled_from([room.ids["question"], "nope"]),
        "before": st.sampled_from(["1", "999999", "x"]),
        "muted": st.booleans(),
        "on": st.booleans(),
        "raised": st.booleans(),
        "locked": st.booleans(),
        "multiple": st.booleans(),
        "allowed": st.booleans(),
        "may_return": st.booleans(),
        "emoji": st.sampled_from(["👍", "🎉", "💣", ""]),
        "text": st.text(max_size=30),
        "question": st.text(max_size=30),
        "options": st.lists(st.text(max_size=10), max_size=12),
        "choices": st.lists(st.integers(-2, 12), max_size=4),
        "color": st.sampled_from(["#112233", "#GGGGGG", "red"]),
        "width": numbers,
        "points": st.lists(st.lists(numbers, max_size=3), max_size=5),
        "sdp": st.sampled_from(["v=0\r\n", "not sdp", "v=0" + "x" * 70000]),
    }
    return by_field.get(field, json_values)


def successors(room: Room, sender: str) -> st.SearchStrategy[Any]:
    """`leave.successor` values that refuse the leave, so the shared meeting goes on: never
    None (no successor: a valid leave), and from the host never someone present who could
    take over (an attendee's successor is refused whoever it names: only a host hands on)."""
    absent = [*ABSENT_IDS, room.ids[sender]]  # the host itself is not among those present
    named = [*room.ids.values(), *ABSENT_IDS] if sender == "attendee" else absent
    return st.one_of(
        st.sampled_from(named),
        st.sampled_from(named),
        st.sampled_from(["", "x" * 65, "p 1", "\ud800"]),
        json_values.filter(lambda v: v is not None and not isinstance(v, str)),
        deep,
    )


def harmless(field: str) -> st.SearchStrategy[Any] | None:
    """Well-formed values a disruptive action may get (they name nothing there is, so its
    validation is passed and the refusal comes from further in); None for other fields."""
    by_field: dict[str, st.SearchStrategy[Any]] = {
        "participant_id": st.sampled_from(ABSENT_IDS),
        "poll_id": st.just("nope"),
        "question_id": st.just("nope"),
        "may_return": st.booleans(),
    }
    return by_field.get(field)


@st.composite
def action_data(draw: st.DrawFn, room: Room, action: str, sender: str = "host") -> Any:
    if action == "leave" and draw(st.booleans()):
        leaving = {"successor": draw(successors(room, sender))}
        if draw(st.integers(0, 3)) == 0:
            leaving[draw(nasty_text)] = draw(json_values)
        return leaving
    if action in ENDING:
        # Always invalid for these (they take no data), so the shared meeting goes on.
        return draw(
            st.one_of(
                st.dictionaries(nasty_text, json_values, min_size=1, max_size=3),
                json_values.filter(lambda v: not isinstance(v, dict) and v is not None),
                deep,
            )
        )
    if draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(json_values, deep))  # not even an object, sometimes
    data: dict[str, Any] = {}
    for field in FIELDS.get(action, ()):
        if draw(st.booleans()):
            real = draw(st.booleans())
            if action not in DISRUPTIVE:
                value = plausible(room, field) if real else st.one_of(json_values, deep)
            else:
                safe = harmless(field) if real else None
                value = safe if safe is not None else st.one_of(json_values, deep)
            data[field] = draw(value)
    if draw(st.integers(0, 4)) == 0:
        data[draw(nasty_text)] = draw(json_values)
    return data


# -- the twin and its clients -----------------------------------------------------------------

_ids = itertools.count(1)


def request(ws: ClientConnection, action: str, data: Any) -> dict[str, Any]:
    """Send one message and wait (bounded) for its one answer, skipping events."""
    rid = f"prop-{next(_ids)}"
    ws.send(encode({"action": action, "id": rid, "data": data}))
    deadline = time.monotonic() + REPLY_TIMEOUT_SECONDS
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{action}: no answer within {REPLY_TIMEOUT_SECONDS} s")
        message = json.loads(ws.recv(timeout=remaining))
        if message.get("type") in ("reply", "error") and message.get("id") in (rid, None):
            return dict(message)
        if "message" in message and "type" not in message:
            raise AssertionError(f"{action}: the integration failed: {message}")


def join(
    twin: Twin, sockets: ExitStack, meeting_id: str, name: str, token: str | None = None
) -> tuple[ClientConnection, str]:
    """Join through the HTTP API and the WebSocket; `sockets` closes the socket."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    body = {"display_name": name} if token else {"display_name": name, "guest_key": new_guest_key()}
    grant = httpx.post(
        f"{twin.base_url}/api/meetings/{meeting_id}/join", json=body, headers=headers, timeout=15
    ).json()
    ws = connect_with(twin, sockets, grant)
    answer = request(ws, "join", {})
    assert answer["type"] == "reply", answer
    return ws, grant["participant_id"]


def connect_with(twin: Twin, sockets: ExitStack, grant: dict[str, Any]) -> ClientConnection:
    """A socket for a join grant (not yet joined); `sockets` closes it."""
    url = f"{twin.ws_url}?meeting={grant['meeting_id']}"
    token = Subprotocol(grant["join_token"])
    return sockets.enter_context(
        # No client keepalive pings: API Gateway needs none, and an idle shared socket must
        # not be closed by a ping the twin answers late while the machine is busy.
        connect(
            url, subprotocols=[Subprotocol(SUBPROTOCOL), token], max_size=None, ping_interval=None
        )
    )


def stored(twin: Twin, meeting_id: str) -> list[dict[str, Any]]:
    """What the meeting holds, without request records (a refused request leaves none either,
    but a served one does, and the property compares across both)."""
    return [i for i in twin.meeting_items(meeting_id) if not i["sk"].startswith("R#")]


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    yield from _start(tmp_path_factory, TwinOptions())


class HostAccount:
    """A host's access token, refreshed before it expires (15 minutes: the long profile
    runs for longer than that)."""

    def __init__(self, twin: Twin) -> None:
        self._twin = twin
        session = httpx.post(
            f"{twin.base_url}/api/auth/signup",
            json={
                "email": f"prop-{uuid.uuid4().hex[:8]}@example.com",
                "password": "correct horse 1",
                "name": "Hana Host",
            },
            timeout=15,
        ).json()
        self._refresh, self._access = session["refresh_token"], session["access_token"]
        self._fresh_until = time.monotonic() + 10 * 60

    @property
    def token(self) -> str:
        if time.monotonic() > self._fresh_until:
            session = httpx.post(
                f"{self._twin.base_url}/api/auth/refresh",
                json={"refresh_token": self._refresh},
                timeout=15,
            ).json()
            self._refresh, self._access = session["refresh_token"], session["access_token"]
            self._fresh_until = time.monotonic() + 10 * 60
        return str(self._access)


@pytest.fixture(scope="module")
def account(twin: Twin) -> HostAccount:
    return HostAccount(twin)


def new_meeting(twin: Twin, token: str, **fields: Any) -> str:
    response = httpx.post(
        f"{twin.base_url}/api/meetings",
        json={
            "title": "Properties",
            "start": "2026-12-01T09:00",
            "timezone": "Europe/Paris",
            "duration_minutes": 30,
            **fields,
        },
        headers={"authorization": f"Bearer {token}"},
        timeout=15,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["meeting_id"])


def _room(twin: Twin, account: HostAccount, kind: str) -> Iterator[Room]:
    mid = new_meeting(twin, account.token, kind=kind)
    sockets = ExitStack()
    host, host_id = join(twin, sockets, mid, "Hana Host", account.token)
    attendee, attendee_id = join(twin, sockets, mid, "Ann")
    poll = request(host, "poll_create", {"question": "Q?", "options": ["a", "b", "c"]})
    question = request(attendee, "qa_ask", {"text": "Why?"})
    ids = {
        "host": host_id,
        "attendee": attendee_id,
        "poll": poll["data"]["poll_id"],
        "question": question["data"]["question_id"],
    }
    with sockets:
        yield Room(mid, host, attendee, ids, kind)


@pytest.fixture(scope="module")
def room(twin: Twin, account: HostAccount) -> Iterator[Room]:
    yield from _room(twin, account, "meeting")


@pytest.fixture(scope="module")
def webinar(twin: Twin, account: HostAccount) -> Iterator[Room]:
    """A webinar: its attendee is view-only until allowed to talk (`allow_talk`)."""
    yield from _room(twin, account, "webinar")


# -- properties ---------------------------------------------------------------------------------

ACTIONS_TRIED = sorted(ACTIONS)


def _by_sk(items: list[dict[str, Any]], prefix: str) -> dict[str, dict[str, Any]]:
    return {i["sk"]: i for i in items if i["sk"].startswith(prefix)}


@given(data=st.data())
@more
def test_any_message_gets_one_clear_answer_and_a_refusal_changes_nothing(
    twin: Twin, room: Room, webinar: Room, data: st.DataObject
) -> None:
    action = data.draw(st.sampled_from(ACTIONS_TRIED), label="action")
    where = room if data.draw(st.integers(0, 3), label="webinar?") else webinar
    sender = data.draw(st.sampled_from(["host", "attendee"]), label="sender")
    body = data.draw(action_data(where, action, sender), label="data")
    ws = where.host if sender == "host" else where.attendee
    before = stored(twin, where.meeting_id)
    answer = request(ws, action, body)
    after = stored(twin, where.meeting_id)
    if answer["type"] == "error":
        assert answer["error"]["code"] in CODES, answer
        assert answer["error"]["message"], answer
        assert after == before, (action, body, answer)
    else:
        assert answer["type"] == "reply" and answer["ok"] is True, answer
        _check_effect(where, action, sender, before, after)
    assert request(ws, "ping", {})["type"] == "reply"  # the connection still works


def _check_effect(
    room: Room, action: str, sender: str, before: list[dict[str, Any]], after: list[dict[str, Any]]
) -> None:
    """What the counting actions must have done when accepted, exactly."""
    people_before, people_after = _by_sk(before, "P#"), _by_sk(after, "P#")
    if action == "join":
        # The same participant again on its own socket: nobody added, the sender admitted
        # on this very connection, as before.
        assert people_after.keys() == people_before.keys()
        me = f"P#{room.ids[sender]}"
        assert people_after[me]["status"] == "admitted"
        assert people_after[me]["connection_id"] == people_before[me]["connection_id"]
    elif action == "chat":
        new = _by_sk(after, "C#").keys() - _by_sk(before, "C#").keys()
        assert len(new) == 1, new
    elif action in ("poll_vote", "qa_upvote"):
        kind, key = ("V#", "POLL#") if action == "poll_vote" else ("U#", "Q#")
        new = _by_sk(after, kind).keys() - _by_sk(before, kind).keys()
        assert len(new) == 1, new
        counted = "voters" if action == "poll_vote" else "votes"
        moved = {
            sk: int(item[counted]) - int(_by_sk(before, key)[sk][counted])
            for sk, item in _by_sk(after, key).items()
            if sk in _by_sk(before, key)
        }
        assert sorted(moved.values()) == [0] * (len(moved) - 1) + [1], moved


@given(
    sender=st.sampled_from(["host", "host", "host", "attendee"]),
    target=st.sampled_from(["attendee", "attendee", "attendee", "host", "poll", *ABSENT_IDS]),
    allowed=st.sampled_from([True, False]) | st.sampled_from([True, False]) | json_values,
    extra=st.sampled_from([None, None, None, "extra"]).flatmap(
        lambda e: st.none() if e is None else st.tuples(nasty_text, json_values)
    ),
)
@example(sender="host", target="attendee", allowed=True, extra=None)
@example(sender="host", target="attendee", allowed=False, extra=None)
@fewer
def test_allow_talk_in_a_webinar_changes_exactly_the_role(
    twin: Twin, webinar: Room, sender: str, target: str, allowed: Any, extra: Any
) -> None:
    """The valid path of `allow_talk` (a webinar, a moderator, an attendee or panelist, a
    boolean), and the refusals around it: an accepted one changes the role (and, taking the
    right back, turns the microphone, camera and screen off), nothing else."""
    attendee = f"P#{webinar.ids['attendee']}"
    if _by_sk(stored(twin, webinar.meeting_id), "P#")[attendee]["role"] == "cohost":
        # Promoted by an example of another property: an attendee again (well, a panelist).
        demoted = request(webinar.host, "demote", {"participant_id": webinar.ids["attendee"]})
        assert demoted["type"] == "reply", demoted
    data = {"participant_id": webinar.ids.get(target, target), "allowed": allowed}
    if extra is not None:
        data[extra[0]] = extra[1]
    ws = webinar.host if sender == "host" else webinar.attendee
    before = stored(twin, webinar.meeting_id)
    answer = request(ws, "allow_talk", data)
    after = stored(twin, webinar.meeting_id)
    if answer["type"] == "error":
        assert answer["error"]["code"] in CODES, answer
        assert after == before, (data, answer)
        return
    assert (sender, target, extra) == ("host", "attendee", None), (data, answer)
    assert isinstance(allowed, bool), (data, answer)
    was, now = _by_sk(before, "P#")[attendee], _by_sk(after, "P#")[attendee]
    assert now["role"] == ("panelist" if allowed else "attendee")
    assert answer["data"]["participant"]["role"] == now["role"]
    changed = {k for k in was.keys() | now.keys() if was.get(k) != now.get(k)}
    assert changed <= {"role", "muted", "camera", "screen", "rev"}, changed
    if not allowed:
        assert (now["muted"], now["camera"], now["screen"]) == (True, False, False)
    # Everyone and everything else of the meeting as it was.
    kept = ("P#", "C#", "POLL#", "V#", "Q#", "U#", "W#")

    def others(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [i for i in items if i["sk"].startswith(kept) and i["sk"] != attendee]

    assert others(after) == others(before)


def _chat_items(twin: Twin, meeting_id: str) -> list[dict[str, Any]]:
    return [i for i in twin.meeting_items(meeting_id) if i["sk"].startswith("C#")]


@given(texts=st.lists(st.one_of(nasty_text, st.text(max_size=20)), min_size=1, max_size=8))
def test_each_accepted_chat_is_stored_once_and_each_refused_one_not_at_all(
    twin: Twin, room: Room, texts: list[str]
) -> None:
    before = _chat_items(twin, room.meeting_id)
    accepted: list[tuple[int, str]] = []
    for text in texts:
        answer = request(room.attendee, "chat", {"text": text})
        if answer["type"] == "reply":
            accepted.append((answer["data"]["message_id"], text.strip()))
        else:
            assert answer["error"]["code"] == "invalid_input", answer
    after = _chat_items(twin, room.meeting_id)
    new = sorted((i["message_id"], i["text"]) for i in after if i not in before)
    assert new == sorted(accepted)


@given(
    votes=st.lists(
        st.tuples(st.integers(0, 3), st.lists(st.integers(-1, 3), max_size=3)),
        min_size=1,
        max_size=8,
    ),
    multiple=st.booleans(),
)
@fewer
def test_accepted_votes_and_upvotes_count_exactly(
    twin: Twin, account: HostAccount, votes: list[tuple[int, list[int]]], multiple: bool
) -> None:
    mid = new_meeting(twin, account.token)
    with ExitStack() as sockets:
        host, _ = join(twin, sockets, mid, "Hana Host", account.token)
        voters = [host, *(join(twin, sockets, mid, f"Voter {n}")[0] for n in range(3))]
        poll = request(
            host, "poll_create", {"question": "Q", "options": ["a", "b", "c"], "multiple": multiple}
        )["data"]["poll_id"]
        question = request(voters[1], "qa_ask", {"text": "Why?"})["data"]["question_id"]
        counts, voted, upvoters = [0, 0, 0], set(), set()
        for who, choices in votes:
            answer = request(voters[who], "poll_vote", {"poll_id": poll, "choices": choices})
            if answer["type"] == "reply":
                assert who not in voted
                voted.add(who)
                for choice in choices:
                    counts[choice] += 1
            upvote = request(voters[who], "qa_upvote", {"question_id": question})
            if upvote["type"] == "reply":
                assert who not in upvoters and who != 1
                upvoters.add(who)
        items = {i["sk"]: i for i in twin.meeting_items(mid)}
        poll_item = items[f"POLL#{poll}"]
        assert [int(c) for c in poll_item["counts"]] == counts
        assert int(poll_item["voters"]) == len(voted)
        assert int(items[f"Q#{question}"]["votes"]) == len(upvoters)


socket_join_data = st.one_of(
    st.just({}),
    st.just({}),
    st.just({}),
    st.dictionaries(nasty_text, json_values, min_size=1, max_size=2),
    json_values.filter(lambda v: not isinstance(v, dict) and v is not None),
    deep,
)


@given(
    joins=st.lists(
        st.tuples(st.one_of(nasty_text, st.text(min_size=1, max_size=20)), st.integers(0, 3)),
        min_size=1,
        max_size=6,
    ),
    socket_joins=st.lists(st.tuples(st.integers(0, 3), socket_join_data), min_size=1, max_size=5),
)
@fewer
def test_each_accepted_join_adds_one_participant_per_person(
    twin: Twin,
    account: HostAccount,
    joins: list[tuple[str, int]],
    socket_joins: list[tuple[int, Any]],
) -> None:
    """Joins with any name, by four guest identities (some join more than once): one
    participant per identity that was ever accepted, whatever was refused around them. Then
    `join` over the socket with any data, with each one's latest grant (some more than once,
    from a new socket each time): each accepted one admits exactly its participant, and adds
    nobody."""
    mid = new_meeting(twin, account.token, allow_before_host=True)
    keys = [new_guest_key() for _ in range(4)]
    accepted: set[str] = set()
    grants: dict[int, dict[str, Any]] = {}
    for name, who in joins:
        response = httpx.post(
            f"{twin.base_url}/api/meetings/{mid}/join",
            content=json.dumps({"display_name": name, "guest_key": keys[who]}),
            headers={"content-type": "application/json"},
            timeout=15,
        )
        assert response.status_code < 500, response.text
        if response.status_code == 200:
            accepted.add(response.json()["participant_id"])
            grants[who] = response.json()
        else:
            assert set(response.json()) == {"error"}, response.text
    participants = [i for i in twin.meeting_items(mid) if i["sk"].startswith("P#")]
    assert sorted(i["participant_id"] for i in participants) == sorted(accepted)

    admitted: set[str] = set()
    with ExitStack() as sockets:
        for n, data in socket_joins:
            if not grants:
                break
            who = sorted(grants)[n % len(grants)]
            ws = connect_with(twin, sockets, grants[who])
            answer = request(ws, "join", data)
            if answer["type"] == "reply":
                assert data == {}, (data, answer)
                assert answer["data"]["you"]["participant_id"] == grants[who]["participant_id"]
                admitted.add(grants[who]["participant_id"])
            else:
                assert answer["error"]["code"] in ("invalid_input", "malformed_json"), answer
        people = [i for i in twin.meeting_items(mid) if i["sk"].startswith("P#")]
        assert sorted(i["participant_id"] for i in people) == sorted(accepted)
        assert {i["participant_id"] for i in people if i["status"] == "admitted"} == admitted


def test_the_generators_reach_the_inputs_that_matter() -> None:
    """Guards the strategies themselves: the values the properties are about are generated."""
    find(nasty_text, lambda s: any(0xD800 <= ord(c) <= 0xDFFF for c in s))
    find(nasty_text, lambda s: any(unicodedata.category(c) == "Cf" for c in s))
    find(numbers, lambda n: isinstance(n, float) and math.isnan(n))
    find(
        json_values, lambda v: isinstance(v, dict) and any(isinstance(x, list) for x in v.values())
    )
