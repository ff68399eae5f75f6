"""In-meeting signaling over real WebSockets against the twin: roster, chat, hands, mute,
waiting room, host controls, reconnects and clean-up of gone connections."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from tests.integration.client import Api, SignalingClient, new_guest_key
from tests.integration.conftest import Twin


async def _meeting(twin: Twin, **fields: Any) -> tuple[Api, dict[str, Any]]:
    host = Api(twin.base_url)
    await host.sign_up(f"host-{uuid.uuid4().hex[:8]}@example.com", "Hana Host")
    return host, await host.create_meeting(**fields)


async def _enter(
    twin: Twin, api: Api, meeting_id: str, name: str
) -> tuple[SignalingClient, dict[str, Any]]:
    grant = await api.join(meeting_id, name)
    client = await SignalingClient.enter(twin.ws_url, grant)
    joined = await client.ok("join")
    return client, joined


def _public(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What a participant saw, reduced to what must match across participants."""
    seen: list[tuple[Any, ...]] = []
    for e in events:
        data = e["data"]
        if e["event"] == "chat.message":
            m = data["message"]
            if not m["private"]:
                seen.append((e["seq"], "chat", m["from"], m["text"]))
        elif e["event"] == "participant.updated":
            p = data["participant"]
            seen.append((e["seq"], "updated", p["participant_id"], p["muted"], p["hand"]))
    return seen


async def test_three_participants_see_each_other_in_order(twin: Twin) -> None:
    host_api, meeting = await _meeting(twin)
    mid = meeting["meeting_id"]
    host, host_joined = await _enter(twin, host_api, mid, "Hana Host")
    assert host_joined["you"]["role"] == "host"
    assert [p["name"] for p in host_joined["participants"]] == ["Hana Host"]

    guest = Api(twin.base_url)
    bob, bob_joined = await _enter(twin, guest, mid, "Bob")
    carol, carol_joined = await _enter(twin, guest, mid, "Carol")
    assert [p["name"] for p in bob_joined["participants"]] == ["Hana Host", "Bob"]
    assert [p["name"] for p in carol_joined["participants"]] == ["Hana Host", "Bob", "Carol"]
    assert bob_joined["you"]["role"] == "attendee"
    await host.wait_event(
        "participant.joined", lambda e: e["data"]["participant"]["name"] == "Carol"
    )
    await bob.wait_event(
        "participant.joined", lambda e: e["data"]["participant"]["name"] == "Carol"
    )
    assert [e["data"]["participant"]["name"] for e in host.events_named("participant.joined")] == [
        "Bob",
        "Carol",
    ]

    # A sequence of actions from different participants; each waits for its reply, so the
    # meeting's order is the order below.
    await host.ok("chat", {"text": "hello all"})
    await bob.ok("mute", {"muted": False})
    await carol.ok("hand", {"raised": True})
    await bob.ok("chat", {"text": "hi from bob"})
    private = await carol.ok("chat", {"text": "psst bob", "to": bob.participant_id})
    await host.ok("hand", {"raised": True})
    await bob.ok("mute", {"muted": True})
    await carol.ok("hand", {"raised": False})
    await carol.ok("chat", {"text": "last word"})

    clients = (host, bob, carol)
    for client in clients:
        await client.wait_event(
            "chat.message", lambda e: e["data"]["message"]["text"] == "last word"
        )
    expected = _public(host.events)
    assert [x[1] for x in expected] == [
        "chat",
        "updated",
        "updated",
        "chat",
        "updated",
        "updated",
        "updated",
        "chat",
    ]
    assert expected[1][2:] == (bob.participant_id, False, False)
    assert expected[2][2:] == (carol.participant_id, True, True)
    for client in clients:
        assert _public(client.events) == expected, client.name
        seqs = [(e["seq"], e["event"], str(e["data"])) for e in client.events]
        assert len(seqs) == len(set(seqs)), f"{client.name} got an event twice"
        numbers = [e["seq"] for e in client.events]
        assert numbers == sorted(numbers), f"{client.name} saw events out of order"

    # The private message reached its two parties only, once each.
    def is_private(e: dict[str, Any]) -> bool:
        return e["event"] == "chat.message" and e["data"]["message"]["private"]

    assert [e["data"]["message"]["message_id"] for e in bob.events if is_private(e)] == [
        private["message_id"]
    ]
    assert [e["data"]["message"]["text"] for e in carol.events if is_private(e)] == ["psst bob"]
    assert not [e for e in host.events if is_private(e)]

    # A late joiner gets the roster with states and the public chat history.
    dave, dave_joined = await _enter(twin, guest, mid, "Dave")
    states = {p["name"]: (p["muted"], p["hand"]) for p in dave_joined["participants"]}
    assert states == {
        "Hana Host": (True, True),
        "Bob": (True, False),
        "Carol": (True, False),
        "Dave": (True, False),
    }
    assert [m["text"] for m in dave_joined["chat"]] == ["hello all", "hi from bob", "last word"]

    await dave.ok("camera", {"on": True})
    camera = await host.wait_event(
        "participant.updated", lambda e: e["data"]["changed"] == ["camera"]
    )
    assert camera["data"]["participant"]["camera"] is True

    await carol.ok("react", {"emoji": "🎉"})
    reaction = await host.wait_event("reaction")
    assert reaction["data"] == {
        "participant_id": carol.participant_id,
        "name": "Carol",
        "emoji": "🎉",
    }

    await bob.ok("screenshare", {"on": True})
    shared = await carol.wait_event(
        "participant.updated", lambda e: e["data"]["changed"] == ["screen"]
    )
    assert shared["data"]["participant"]["screen"] is True
    busy = await carol.request("screenshare", {"on": True})
    assert busy["type"] == "error" and busy["error"]["code"] == "conflict"

    await bob.ok("leave")
    left = await host.wait_event("participant.left")
    assert left["data"]["participant_id"] == bob.participant_id
    assert left["data"]["participant"]["screen"] is False
    for client in (host, bob, carol, dave):
        await client.close()


async def test_webinar_attendees_are_view_only(twin: Twin) -> None:
    host_api, meeting = await _meeting(twin, kind="webinar")
    host, _ = await _enter(twin, host_api, meeting["meeting_id"], "Hana Host")
    guest = Api(twin.base_url)
    viewer, joined = await _enter(twin, guest, meeting["meeting_id"], "Viewer")
    assert joined["meeting"]["kind"] == "webinar" and joined["you"]["role"] == "attendee"
    for action, data in (
        ("mute", {"muted": False}),
        ("camera", {"on": True}),
        ("screenshare", {"on": True}),
    ):
        reply = await viewer.request(action, data)
        assert reply["type"] == "error" and reply["error"]["code"] == "forbidden", reply
    await viewer.ok("hand", {"raised": True})
    await viewer.ok("chat", {"text": "question from the audience"})
    await host.wait_event("chat.message")
    await host.ok("promote", {"participant_id": viewer.participant_id})
    await viewer.ok("mute", {"muted": False})  # a co-host may speak
    for client in (host, viewer):
        await client.close()
    await host_api.close()
    await guest.close()


async def test_waiting_room_admit_and_deny(twin: Twin) -> None:
    host_api, meeting = await _meeting(twin, waiting_room=True)
    mid = meeting["meeting_id"]
    host, _ = await _enter(twin, host_api, mid, "Hana Host")
    guest = Api(twin.base_url)
    eve, eve_joined = await _enter(twin, guest, mid, "Eve")
    assert eve_joined["status"] == "waiting"
    waiting = await host.wait_event("waiting.joined")
    assert waiting["data"]["participant"]["name"] == "Eve"

    # While waiting, Eve can do nothing but wait.
    refused = await eve.request("chat", {"text": "let me in"})
    assert refused["type"] == "error" and refused["error"]["code"] == "forbidden"

    await host.ok("admit", {"participant_id": eve.participant_id})
    admitted = await eve.wait_event("you.admitted")
    assert [p["name"] for p in admitted["data"]["participants"]] == ["Hana Host", "Eve"]
    await host.wait_event("waiting.left", lambda e: e["data"]["outcome"] == "admitted")
    await eve.ok("chat", {"text": "thanks"})
    await host.wait_event("chat.message")

    frank, frank_joined = await _enter(twin, guest, mid, "Frank")
    assert frank_joined["status"] == "waiting"
    await host.wait_event("waiting.joined", lambda e: e["data"]["participant"]["name"] == "Frank")
    await host.ok("deny", {"participant_id": frank.participant_id})
    await frank.wait_event("you.denied")
    code, _ = await asyncio.wait_for(frank.closed, 10)
    assert code is not None
    again = await guest.post(
        f"/api/meetings/{mid}/rejoin",
        {"participant_id": frank.participant_id, "resume_token": "whatever-token-value"},
    )
    assert again.status_code in (401, 403)
    for client in (host, eve, frank):
        await client.close()


async def test_host_mutes_all_and_removes_a_participant(twin: Twin) -> None:
    host_api, meeting = await _meeting(twin)
    mid = meeting["meeting_id"]
    host, _ = await _enter(twin, host_api, mid, "Hana Host")
    guest = Api(twin.base_url)
    bob, _ = await _enter(twin, guest, mid, "Bob")
    grant = await guest.join(mid, "Carol")
    carol = await SignalingClient.enter(twin.ws_url, grant)
    await carol.ok("join")
    await host.ok("mute", {"muted": False})
    await bob.ok("mute", {"muted": False})
    await carol.ok("mute", {"muted": False})

    result = await host.ok("mute_all")
    assert sorted(result["muted"]) == sorted([bob.participant_id, carol.participant_id])
    for client in (host, bob, carol):
        event = await client.wait_event("meeting.muted_all")
        assert {p["participant_id"]: p["muted"] for p in event["data"]["participants"]} == {
            bob.participant_id: True,
            carol.participant_id: True,
        }
    # The host stays unmuted; a participant may unmute again.
    await bob.ok("mute", {"muted": False})

    await host.ok("remove", {"participant_id": carol.participant_id})
    removed = await carol.wait_event("participant.removed")
    assert removed["data"]["participant_id"] == carol.participant_id
    await bob.wait_event("participant.removed")
    code, _ = await asyncio.wait_for(carol.closed, 10)
    assert code is not None

    # Removed means removed: no new socket, no new join.
    try:
        await SignalingClient.connect(twin.ws_url, mid, grant["join_token"], "Carol again")
    except Exception as exc:  # the handshake is refused by $connect
        assert "403" in str(exc)
    else:
        raise AssertionError("a removed participant reconnected")
    rejoin = await guest.post(
        f"/api/meetings/{mid}/rejoin",
        {"participant_id": carol.participant_id, "resume_token": grant["resume_token"]},
    )
    assert rejoin.status_code == 403
    for client in (host, bob, carol):
        await client.close()


async def test_reconnect_keeps_role_and_place_and_host_keeps_rights(twin: Twin) -> None:
    host_api, meeting = await _meeting(twin)
    mid = meeting["meeting_id"]
    host, _ = await _enter(twin, host_api, mid, "Hana Host")
    guest = Api(twin.base_url)
    grant = await guest.join(mid, "Bob")
    bob = await SignalingClient.enter(twin.ws_url, grant)
    first = await bob.ok("join")
    carol, _ = await _enter(twin, guest, mid, "Carol")
    await host.ok("promote", {"participant_id": bob.participant_id})
    await bob.wait_event(
        "participant.updated", lambda e: e["data"]["participant"]["role"] == "cohost"
    )

    await bob.close()
    # A drop is not a leave: the others see Bob reconnecting, for the reconnect window.
    dropped = await host.wait_event(
        "participant.updated",
        lambda e: (
            e["data"]["participant"]["participant_id"] == bob.participant_id
            and not e["data"]["participant"]["connected"]
        ),
    )
    assert dropped["data"]["participant"]["reconnecting_until"] > time.time() * 1000
    assert not host.events_named("participant.left")
    regrant = (
        await guest.post(
            f"/api/meetings/{mid}/rejoin",
            {
                "session_id": grant["session_id"],
                "participant_id": grant["participant_id"],
                "resume_token": grant["resume_token"],
            },
        )
    ).json()
    bob = await SignalingClient.enter(twin.ws_url, regrant)
    again = await bob.ok("join")
    assert again["you"]["role"] == "cohost"
    assert again["you"]["place"] == first["you"]["place"]
    assert [p["name"] for p in again["participants"]] == ["Hana Host", "Bob", "Carol"]
    # As a co-host Bob may mute others, but not end the meeting.
    await bob.ok("mute", {"muted": True, "participant_id": carol.participant_id})
    denied = await bob.request("end")
    assert denied["type"] == "error" and denied["error"]["code"] == "forbidden"

    # The host drops without leaving, comes back through the same account, and is still host.
    await host.close()
    await bob.wait_event(
        "participant.updated",
        lambda e: (
            e["data"]["participant"]["participant_id"] == host.participant_id
            and not e["data"]["participant"]["connected"]
        ),
    )
    host2, rejoined = await _enter(twin, host_api, mid, "Hana Host")
    assert rejoined["you"]["role"] == "host"
    await host2.ok("lock", {"locked": True})
    await carol.wait_event("meeting.updated", lambda e: e["data"]["locked"] is True)
    late = await guest.post(
        f"/api/meetings/{mid}/join", {"display_name": "Late", "guest_key": new_guest_key()}
    )
    assert late.status_code == 403 and "locked" in late.json()["error"]["message"]
    await host2.ok("end")
    for client in (bob, carol):
        await client.wait_event("meeting.ended")
        await asyncio.wait_for(client.closed, 10)
    # The session is over, not the meeting: a guest now waits for the host to start it again.
    later = await guest.post(
        f"/api/meetings/{mid}/join", {"display_name": "Later", "guest_key": new_guest_key()}
    )
    assert later.status_code == 409 and later.json()["error"]["code"] == "not_started"
    await host2.close()
