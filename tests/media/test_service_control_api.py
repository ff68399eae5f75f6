"""The node's control API over real loopback HTTP (uvicorn), with a stand-in room.

Every refusal is checked for its status, its error code and message, and for leaving no room
behind. The stand-in room records what reached it, so a refused request that leaked through to
a room would show; no aiortc is needed for any of this.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts.node_api import IceServer
from media_fleet.service.control_api import WORKER_HEADER, WorkerState, control_app
from media_fleet.service.http_server import ServedApp
from media_fleet.service.keys import TokenGate
from media_fleet.service.revocations import Revocations
from media_fleet.service.rooms import RoomDirectory
from media_fleet.service.wire import MAX_BODY_BYTES
from townhall.auth.keys import SigningKey
from townhall.media.jwks import jwks
from townhall.media.tokens import MediaTokenService

NODE = "node-test"
OFFER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


@dataclass
class StandInRoom:
    meeting_id: str
    calls: list[tuple[str, str]] = field(default_factory=list)
    participants: set[str] = field(default_factory=set)
    subscribed: set[str] = field(default_factory=set)
    closed: bool = False
    moved: bool = False
    # When set, a publish waits for it: a request still inside the room, as while aiortc
    # gathers ICE candidates.
    hold: asyncio.Event | None = None
    # The TURN servers each publish and subscribe was given, in order.
    ice_servers: list[list[IceServer]] = field(default_factory=list)

    async def publish(
        self, participant_id: str, offer_sdp: str, ice_servers: Sequence[IceServer] = ()
    ) -> str:
        self.calls.append(("publish", participant_id))
        self.ice_servers.append(list(ice_servers))
        if self.hold is not None:
            await self.hold.wait()
        if not offer_sdp.startswith("v=0"):
            raise ValueError("not an SDP offer")
        self.participants.add(participant_id)
        return "answer-for-" + participant_id

    async def subscribe(self, participant_id: str, ice_servers: Sequence[IceServer] = ()) -> str:
        self.calls.append(("subscribe", participant_id))
        self.ice_servers.append(list(ice_servers))
        self.participants.add(participant_id)
        self.subscribed.add(participant_id)
        return "offer-for-" + participant_id

    async def accept_answer(self, participant_id: str, answer_sdp: str) -> None:
        self.calls.append(("answer", participant_id))
        if participant_id not in self.subscribed:
            raise KeyError(participant_id)  # as MeetingRoom does

    async def leave(self, participant_id: str) -> None:
        self.calls.append(("leave", participant_id))
        self.participants.discard(participant_id)

    async def tell_clients_to_move(self) -> None:
        self.moved = True

    async def close(self) -> None:
        self.closed = True

    def sessions(self) -> int:
        return len(self.participants)

    def forwarded_streams(self) -> int:
        return len(self.participants) * 2

    def packets_per_second(self) -> float:
        return 0.0


@dataclass
class Node:
    url: str
    rooms: RoomDirectory
    worker: WorkerState
    created: list[StandInRoom]
    key: SigningKey
    jwks_loads: list[int]
    published_jwks: dict[str, Any]
    revocations: Revocations
    # Rooms created from now on hold their publishes until this is set (None: they do not).
    holds: list[asyncio.Event | None] = field(default_factory=lambda: [None])

    def revocation(
        self, meeting: str = "m-1", participant: str | None = None, *, node: str = NODE
    ) -> str:
        """A revocation token, as the control plane mints it when someone is removed (or,
        with no participant, when the meeting ends)."""
        return MediaTokenService(self.key).issue_revocation(
            meeting, node, participant_id=participant
        )

    def token(
        self,
        meeting: str = "m-1",
        participant: str = "p-1",
        *,
        node: str = NODE,
        may_publish: bool = True,
        key: SigningKey | None = None,
        clock: Callable[[], float] | None = None,
    ) -> str:
        service = MediaTokenService(key or self.key, clock or time.time)
        return service.issue(meeting, participant, node, may_publish=may_publish)[0]


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    key = SigningKey.from_private_key(Ed25519PrivateKey.generate())
    published = jwks(key)
    loads: list[int] = []

    def load() -> Mapping[str, Any]:
        loads.append(1)
        return published

    created: list[StandInRoom] = []
    holds: list[asyncio.Event | None] = [None]

    def factory(meeting_id: str, *, video_slots: int | None = None) -> StandInRoom:
        created.append(StandInRoom(meeting_id, hold=holds[0]))
        return created[-1]

    rooms = RoomDirectory(factory)
    worker = WorkerState(node_id=NODE, worker=3)
    revocations = Revocations()
    gate = TokenGate(load, NODE, refresh_interval=30.0)
    app = control_app(gate, rooms, worker, revocations=revocations)
    served = ServedApp(app, socket.create_server(("127.0.0.1", 0)))
    await served.start()
    try:
        yield Node(
            f"http://127.0.0.1:{served.port}",
            rooms,
            worker,
            created,
            key,
            loads,
            published,
            revocations,
            holds,
        )
    finally:
        served.stop()
        await served.wait_stopped()


async def post(node: Node, path: str, body: Any, *, raw: bytes | None = None) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
        content = raw if raw is not None else json.dumps(body).encode()
        return await client.post(
            node.url + path, content=content, headers={"content-type": "application/json"}
        )


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]


def assert_no_room(node: Node) -> None:
    assert len(node.rooms) == 0
    assert all(room.closed for room in node.created), "a room was left open"
    assert all(not room.participants for room in node.created)


async def test_health_names_the_node_and_its_load(node: Node) -> None:
    async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
        response = await client.get(node.url + "/v1/health")
    assert response.status_code == 200
    assert response.headers[WORKER_HEADER] == "3"
    body = response.json()
    assert body["node_id"] == NODE and body["state"] == "active"
    assert body["sessions"] == 0 and body["forwarded_streams"] == 0


async def test_publish_subscribe_answer_leave_with_a_valid_token(node: Node) -> None:
    token = node.token("m-1", "alice")
    published = await post(node, "/v1/publish", {"token": token, "sdp": OFFER})
    assert published.status_code == 200, published.text
    assert published.json() == {"sdp": "answer-for-alice"}
    offered = await post(node, "/v1/subscribe", {"token": token})
    assert offered.json() == {"sdp": "offer-for-alice"}
    answered = await post(node, "/v1/subscribe/answer", {"token": token, "sdp": "v=0 answer"})
    assert answered.status_code == 200 and answered.json() == {}
    assert node.rooms.meetings() == ["m-1"] and node.rooms.sessions() == 1

    left = await post(node, "/v1/leave", {"token": token})
    assert left.status_code == 200 and left.json() == {}
    # The last participant left: the room is closed and gone.
    assert [room.calls for room in node.created] == [
        [("publish", "alice"), ("subscribe", "alice"), ("answer", "alice"), ("leave", "alice")]
    ]
    assert_no_room(node)
    # Leaving again is harmless and creates nothing.
    again = await post(node, "/v1/leave", {"token": token})
    assert again.status_code == 200 and len(node.created) == 1


@pytest.mark.parametrize("path", ["/v1/publish", "/v1/subscribe", "/v1/subscribe/answer"])
async def test_a_missing_token_is_unauthenticated(node: Node, path: str) -> None:
    status, code, message = error_of(await post(node, path, {"sdp": OFFER}))
    assert (status, code) == (401, "unauthenticated") and "token is required" in message
    assert_no_room(node)


async def test_a_forged_token_is_refused(node: Node) -> None:
    other = SigningKey.from_private_key(Ed25519PrivateKey.generate())
    # Signed by another key under its own key id: unknown to the node, even after a refresh.
    status, code, message = error_of(
        await post(node, "/v1/publish", {"token": node.token(key=other), "sdp": OFFER})
    )
    assert (status, code) == (401, "unauthenticated") and "unknown key" in message
    # Signed by another key that claims the node's key id: the signature does not hold.
    impostor = SigningKey(private_key=other.private_key, kid=node.key.kid)
    status, code, message = error_of(
        await post(node, "/v1/publish", {"token": node.token(key=impostor), "sdp": OFFER})
    )
    assert (status, code) == (401, "unauthenticated") and "signature is invalid" in message
    status, code, _ = error_of(await post(node, "/v1/subscribe", {"token": "not.a.jwt"}))
    assert (status, code) == (401, "unauthenticated")
    assert_no_room(node)


async def test_an_expired_token_is_refused(node: Node) -> None:
    old = node.token(clock=lambda: time.time() - 3600)
    status, code, message = error_of(await post(node, "/v1/subscribe", {"token": old}))
    assert (status, code, message) == (401, "unauthenticated", "media token has expired")
    assert_no_room(node)


async def test_a_token_for_another_node_is_refused(node: Node) -> None:
    token = node.token(node="node-elsewhere")
    status, code, message = error_of(
        await post(node, "/v1/publish", {"token": token, "sdp": OFFER})
    )
    assert (status, code, message) == (
        401,
        "unauthenticated",
        "media token is for another media node",
    )
    assert_no_room(node)


async def test_a_participant_who_may_not_publish_may_only_subscribe(node: Node) -> None:
    token = node.token(may_publish=False)
    status, code, _ = error_of(await post(node, "/v1/publish", {"token": token, "sdp": OFFER}))
    assert (status, code) == (403, "forbidden")
    assert_no_room(node)
    subscribed = await post(node, "/v1/subscribe", {"token": token})
    assert subscribed.status_code == 200
    assert [room.calls for room in node.created] == [[("subscribe", "p-1")]]


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"\xff\xfe", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_input"),
        (b'"token"', 400, "invalid_input"),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_refused(
    node: Node, raw: bytes, status: int, code: str
) -> None:
    got = error_of(await post(node, "/v1/publish", None, raw=raw))
    assert got[:2] == (status, code)
    assert_no_room(node)


def deep(levels: int, inner: bytes = b"1") -> bytes:
    return b'{"token": ' + b"[" * levels + inner + b"]" * levels + b"}"


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 20_000,  # the reported body: deeper than the parser's recursion limit
        deep(20_000),
        deep(100),  # parses, but deeper than MAX_DEPTH: refused the same way
    ],
    ids=["open-brackets", "balanced-20000", "balanced-100"],
)
async def test_deeply_nested_json_is_a_json_400_and_logs_nothing(
    node: Node, raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    got = error_of(await post(node, "/v1/publish", None, raw=raw))
    assert got == (400, "invalid_json", "request body is nested too deeply")
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
    assert_no_room(node)


async def test_a_body_that_is_not_utf8_is_refused(node: Node) -> None:
    # Valid JSON in UTF-16 (json.loads alone would guess the encoding and take it), and
    # Latin-1 text: both are refused before any token is read.
    for raw in [
        json.dumps({"token": node.token(), "sdp": OFFER}).encode("utf-16"),
        '{"token": "café", "sdp": "v=0"}'.encode("latin-1"),
    ]:
        got = error_of(await post(node, "/v1/publish", None, raw=raw))
        assert got == (400, "invalid_json", "request body is not UTF-8"), raw
    assert_no_room(node)


async def test_lone_surrogates_are_refused_and_pairs_accepted(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    token = node.token("m-1", "alice")
    for raw in [
        b'{"token": "\\ud800", "sdp": "v=0"}',  # in the token: PyJWT could not encode it
        json.dumps({"token": token, "sdp": OFFER + "a=x:\ud800\r\n"}).encode(),
        json.dumps({"token": token, "sdp": OFFER, "\udfff": 1}).encode(),  # in a key
    ]:
        got = error_of(await post(node, "/v1/publish", None, raw=raw))
        assert got == (400, "invalid_input", "request body has text that is not valid Unicode")
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
    assert_no_room(node)
    # A surrogate pair is one character (U+1F600): valid text, and it reaches the room.
    body = b'{"token": "%s", "sdp": "%s a=x:\\ud83d\\ude00"}' % (
        token.encode(),
        OFFER.replace("\r\n", "\\r\\n").encode(),
    )
    accepted = await post(node, "/v1/publish", None, raw=body)
    assert accepted.status_code == 200, accepted.text


async def test_an_integer_longer_than_python_converts_is_invalid_json(node: Node) -> None:
    raw = b'{"token": ' + b"9" * 5000 + b"}"
    got = error_of(await post(node, "/v1/publish", None, raw=raw))
    assert got == (400, "invalid_json", "request body is not valid JSON")
    assert_no_room(node)


async def test_fields_of_the_wrong_type_are_refused(node: Node) -> None:
    token = node.token()
    cases = [
        ("/v1/publish", {"token": 42, "sdp": OFFER}, "'token' must be a string"),
        ("/v1/publish", {"token": token, "sdp": ["v=0"]}, "'sdp' must be a string"),
        ("/v1/publish", {"token": token}, "'sdp' must be a string"),
        ("/v1/publish", {"token": token, "sdp": ""}, "'sdp' must not be empty"),
        ("/v1/subscribe/answer", {"token": token, "sdp": None}, "'sdp' must be a string"),
        ("/v1/leave", {"token": {"mid": "m-1"}}, "'token' must be a string"),
    ]
    for path, body, message in cases:
        assert error_of(await post(node, path, body)) == (400, "invalid_input", message), body
    assert_no_room(node)


async def test_turn_servers_for_the_nodes_side_reach_the_room_and_bad_ones_are_refused(
    node: Node,
) -> None:
    token = node.token("m-1", "alice")
    relay = {"urls": ["turn:10.0.0.1:3478?transport=udp"], "username": "1:a", "credential": "c"}
    published = await post(
        node, "/v1/publish", {"token": token, "sdp": OFFER, "ice_servers": [relay]}
    )
    assert published.status_code == 200, published.text
    offered = await post(node, "/v1/subscribe", {"token": token, "ice_servers": [relay]})
    assert offered.status_code == 200, offered.text
    (room,) = node.created
    assert room.ice_servers == [[relay], [relay]]
    bad: list[object] = [
        "turn:x",
        {"urls": ["turn:x"]},
        [relay, relay, relay],
        [{**relay, "urls": []}],
        [{**relay, "urls": "turn:x"}],
        [{**relay, "urls": ["stun:x:3478"]}],
        [{**relay, "urls": ["turns:x:443?transport=tcp"]}],
        [{**relay, "username": 7}],
        [{**relay, "credential": ""}],
        [{**relay, "credential": "x" * 257}],
        [{**relay, "username": "a\nb"}],
        [{**relay, "extra": 1}],
        [{"urls": ["turn:x"] * 5, "username": "u", "credential": "c"}],
    ]
    for servers in bad:
        for path, body in (
            ("/v1/publish", {"token": token, "sdp": OFFER, "ice_servers": servers}),
            ("/v1/subscribe", {"token": token, "ice_servers": servers}),
        ):
            status, code, _ = error_of(await post(node, path, body))
            assert (status, code) == (400, "invalid_input"), (path, servers)
    # Refused before the room was asked: nothing more reached it.
    assert room.ice_servers == [[relay], [relay]]


async def test_an_oversized_body_is_refused(node: Node) -> None:
    sdp = "a=x\r\n" * (MAX_BODY_BYTES // 5 + 1)
    status, code, message = error_of(
        await post(node, "/v1/publish", {"token": node.token(), "sdp": sdp})
    )
    assert (status, code) == (413, "payload_too_large") and str(MAX_BODY_BYTES) in message
    assert_no_room(node)


async def test_a_room_that_refuses_the_offer_leaves_nothing_behind(node: Node) -> None:
    status, code, message = error_of(
        await post(node, "/v1/publish", {"token": node.token(), "sdp": "not an offer"})
    )
    assert (status, code, message) == (400, "invalid_input", "not an SDP offer")
    assert len(node.created) == 1 and node.created[0].closed
    assert_no_room(node)


async def test_an_answer_without_a_subscription_creates_no_room(node: Node) -> None:
    status, code, _ = error_of(
        await post(node, "/v1/subscribe/answer", {"token": node.token(), "sdp": "v=0"})
    )
    assert (status, code) == (404, "not_found")
    assert node.created == []
    # A publisher who never subscribed: the room says so, and it is still a 404.
    token = node.token("m-1", "alice")
    assert (await post(node, "/v1/publish", {"token": token, "sdp": OFFER})).status_code == 200
    status, code, _ = error_of(
        await post(node, "/v1/subscribe/answer", {"token": token, "sdp": "v=0"})
    )
    assert (status, code) == (404, "not_found")
    assert node.rooms.meetings() == ["m-1"]


async def test_while_draining_new_sessions_are_refused_but_leave_works(node: Node) -> None:
    alice = node.token("m-1", "alice")
    assert (await post(node, "/v1/publish", {"token": alice, "sdp": OFFER})).status_code == 200
    node.worker.draining = True
    for path, body in [
        ("/v1/publish", {"token": node.token("m-2", "bob"), "sdp": OFFER}),
        ("/v1/subscribe", {"token": node.token("m-2", "bob")}),
        ("/v1/subscribe", {"token": alice}),
    ]:
        status, code, _ = error_of(await post(node, path, body))
        assert (status, code) == (503, "draining"), path
    assert node.rooms.meetings() == ["m-1"]  # no room for m-2
    assert (await post(node, "/v1/leave", {"token": alice})).status_code == 200
    assert_no_room(node)


async def test_an_unknown_key_id_refreshes_the_keys_at_most_once_per_interval(node: Node) -> None:
    assert len(node.jwks_loads) == 1  # at start
    rotated = SigningKey.from_private_key(Ed25519PrivateKey.generate())
    # The control plane starts signing with a new key and publishes both.
    node.published_jwks["keys"] = [*node.published_jwks["keys"], *jwks(rotated)["keys"]]
    token = node.token("m-1", "alice", key=rotated)
    accepted = await post(node, "/v1/subscribe", {"token": token})
    assert accepted.status_code == 200, accepted.text
    assert len(node.jwks_loads) == 2
    # A stream of made-up key ids does not become a stream of fetches.
    stranger = SigningKey.from_private_key(Ed25519PrivateKey.generate())
    for _ in range(3):
        response = await post(node, "/v1/subscribe", {"token": node.token(key=stranger)})
        assert response.status_code == 401
    assert len(node.jwks_loads) == 2


async def join(node: Node, meeting: str, participant: str) -> str:
    """Publish, subscribe and answer with a fresh token; the token."""
    token = node.token(meeting, participant)
    for path, body in [
        ("/v1/publish", {"token": token, "sdp": OFFER}),
        ("/v1/subscribe", {"token": token}),
        ("/v1/subscribe/answer", {"token": token, "sdp": "v=0 answer"}),
    ]:
        response = await post(node, path, body)
        assert response.status_code == 200, (path, response.text)
    return token


async def minted_later(node: Node, meeting: str, participant: str) -> str:
    """A token issued after everything so far (a new session): one millisecond is enough."""
    await asyncio.sleep(0.002)
    return node.token(meeting, participant)


def room_of(node: Node, meeting: str) -> StandInRoom:
    return [room for room in node.created if room.meeting_id == meeting][-1]


async def test_revoking_a_participant_drops_them_and_refuses_their_tokens(node: Node) -> None:
    alice = await join(node, "m-1", "alice")
    bob = await join(node, "m-1", "bob")
    elsewhere = await join(node, "m-2", "alice")  # the same id in another meeting
    assert node.rooms.sessions() == 3

    revoked = await post(node, "/v1/revoke", {"token": node.revocation("m-1", "alice")})
    assert revoked.status_code == 200, revoked.text
    assert revoked.json() == {"revoked": "participant"}
    assert revoked.headers[WORKER_HEADER] == "3"
    # Dropped at once; bob stays, and so does the other meeting.
    assert room_of(node, "m-1").calls[-1] == ("leave", "alice")
    assert room_of(node, "m-1").participants == {"bob"}
    assert node.rooms.sessions() == 2

    # alice's unexpired token is refused everywhere a session starts or continues.
    calls_before = list(room_of(node, "m-1").calls)
    for path, body in [
        ("/v1/publish", {"token": alice, "sdp": OFFER}),
        ("/v1/subscribe", {"token": alice}),
        ("/v1/subscribe/answer", {"token": alice, "sdp": "v=0 answer"}),
    ]:
        assert error_of(await post(node, path, body)) == (
            401,
            "token_revoked",
            "media token was revoked: the participant was removed from the meeting",
        ), path
    assert room_of(node, "m-1").calls == calls_before  # nothing reached the room
    # Leaving only takes away: still fine.
    assert (await post(node, "/v1/leave", {"token": alice})).status_code == 200

    assert (await post(node, "/v1/subscribe", {"token": bob})).status_code == 200
    assert (await post(node, "/v1/subscribe", {"token": elsewhere})).status_code == 200
    # A token minted after the revocation (alice let back in, a new session) works.
    fresh = await minted_later(node, "m-1", "alice")
    published = await post(node, "/v1/publish", {"token": fresh, "sdp": OFFER})
    assert published.status_code == 200, published.text
    assert room_of(node, "m-1").participants == {"alice", "bob"}


async def test_ending_a_meeting_closes_its_room_and_refuses_every_token(node: Node) -> None:
    alice = await join(node, "m-1", "alice")
    bob = await join(node, "m-1", "bob")
    carol = await join(node, "m-2", "carol")
    ended = room_of(node, "m-1")

    revoked = await post(node, "/v1/revoke", {"token": node.revocation("m-1")})
    assert revoked.status_code == 200 and revoked.json() == {"revoked": "meeting"}
    assert ended.closed and node.rooms.meetings() == ["m-2"]
    assert node.rooms.sessions() == 1

    rooms_before = len(node.created)
    for token in (alice, bob):
        for path, body in [
            ("/v1/publish", {"token": token, "sdp": OFFER}),
            ("/v1/subscribe", {"token": token}),
        ]:
            assert error_of(await post(node, path, body)) == (
                401,
                "token_revoked",
                "media token was revoked: the meeting has ended",
            ), path
    assert len(node.created) == rooms_before and node.rooms.meetings() == ["m-2"]
    assert (await post(node, "/v1/subscribe", {"token": carol})).status_code == 200

    # The meeting starts again (a new session): tokens minted from now on work.
    fresh = await minted_later(node, "m-1", "bob")
    assert (await post(node, "/v1/subscribe", {"token": fresh})).status_code == 200
    assert node.rooms.meetings() == ["m-1", "m-2"] and not room_of(node, "m-1").closed


async def test_only_the_control_planes_revocation_token_revokes(node: Node) -> None:
    alice = await join(node, "m-1", "alice")
    bob = await join(node, "m-1", "bob")
    other_key = SigningKey.from_private_key(Ed25519PrivateKey.generate())
    forged = MediaTokenService(other_key).issue_revocation("m-1", NODE, participant_id="alice")
    cases = [
        # bob's own media token: a participant cannot remove another.
        ({"token": bob}, "token is not a revocation token"),
        ({}, "a revocation token is required"),
        ({"token": forged}, "revocation token signed with an unknown key"),
        (
            {"token": node.revocation("m-1", "alice", node="node-elsewhere")},
            "revocation token is for another media node",
        ),
    ]
    for body, message in cases:
        assert error_of(await post(node, "/v1/revoke", body)) == (
            401,
            "unauthenticated",
            message,
        ), body
    assert room_of(node, "m-1").participants == {"alice", "bob"} and len(node.revocations) == 0
    assert (await post(node, "/v1/subscribe", {"token": alice})).status_code == 200
    # And a revocation token opens no session.
    status, code, message = error_of(
        await post(node, "/v1/subscribe", {"token": node.revocation("m-3", "mallory")})
    )
    assert (status, code, message) == (401, "unauthenticated", "token is not a media token")
    assert node.rooms.meetings() == ["m-1"]


@pytest.mark.parametrize("participant", ["alice", None], ids=["removed", "ended"])
async def test_a_revocation_during_a_publish_undoes_it(node: Node, participant: str | None) -> None:
    hold = node.holds[0] = asyncio.Event()
    token = node.token("m-1", "alice")
    publishing = asyncio.create_task(post(node, "/v1/publish", {"token": token, "sdp": OFFER}))
    for _ in range(200):  # until the publish is inside the room
        if node.created and node.created[0].calls:
            break
        await asyncio.sleep(0.01)
    room = node.created[0]
    revoked = await post(node, "/v1/revoke", {"token": node.revocation("m-1", participant)})
    assert revoked.status_code == 200, revoked.text
    hold.set()
    status, code, _ = error_of(await asyncio.wait_for(publishing, 5))
    assert (status, code) == (401, "token_revoked")
    # What the publish made in the room was taken down again, and the room is gone.
    assert room.calls[-1] == ("leave", "alice") and room.participants == set()
    assert room.closed and len(node.rooms) == 0


async def test_revocations_still_work_while_draining(node: Node) -> None:
    alice = await join(node, "m-1", "alice")
    node.worker.draining = True
    revoked = await post(node, "/v1/revoke", {"token": node.revocation("m-1", "alice")})
    assert revoked.status_code == 200
    assert error_of(await post(node, "/v1/subscribe", {"token": alice}))[1] == "token_revoked"
    assert_no_room(node)
