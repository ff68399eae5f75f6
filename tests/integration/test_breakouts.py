"""Breakout rooms over real WebSockets against the twin: set up, open, move, talk and draw in a
room without the others hearing it, broadcast, ask for help, visit, close and come back; the
summary's who was where; and bad input that changes nothing."""

from __future__ import annotations

from typing import Any

from tests.integration.client import Api, SignalingClient, entered, hosted_meeting, refusal
from tests.integration.conftest import Twin


def _state(twin: Twin, mid: str, sid: str) -> list[dict[str, Any]]:
    """Everything stored for the session but request records and the outbox (a refusal still
    spends nothing else)."""
    return [
        i
        for i in twin.session_items(mid, sid)
        if not i["sk"].startswith(("R#", "E#")) and i["sk"] != "META"
    ]


async def test_rooms_open_move_keep_their_talk_and_close_back_to_the_main_room(twin: Twin) -> None:
    host_api, mid = await hosted_meeting(twin.base_url)
    host, snap = await entered(twin.ws_url, host_api, mid, "Hana Host")
    assert snap["breakouts"]["state"] == "none"
    guests = Api(twin.base_url)
    bob, _ = await entered(twin.ws_url, guests, mid, "Bob")
    carol, _ = await entered(twin.ws_url, Api(twin.base_url), mid, "Carol")
    dan, _ = await entered(twin.ws_url, Api(twin.base_url), mid, "Dan")
    everyone = (host, bob, carol, dan)
    try:
        setup = await host.ok(
            "breakout_setup",
            {
                "rooms": ["Red", "Blue"],
                "assignments": {bob.participant_id: 1, carol.participant_id: 2},
            },
        )
        breakouts = setup["breakouts"]
        red, blue = (r["room_id"] for r in breakouts["rooms"])
        assert breakouts["state"] == "ready"
        assert breakouts["assignments"] == {bob.participant_id: red, carol.participant_id: blue}
        for c in everyone:
            await c.wait_event("breakouts.changed", lambda e: e["data"]["breakouts"]["rooms"] != [])

        # Not open yet: nobody goes in.
        assert await refusal(bob, "breakout_move", {"room_id": red}) == "conflict"

        opened = await host.ok("breakout_open", {"countdown": 0})
        assert opened["breakouts"]["state"] == "open"
        # Only your own room, unless you may pick; back to the main room at any time.
        assert await refusal(carol, "breakout_move", {"room_id": red}) == "forbidden"
        moved = await bob.ok("breakout_move", {"room_id": red})
        assert moved["room_id"] == red and moved["participant"]["room"] == red
        assert moved["chat"] == [] and moved["whiteboard"] == []
        await carol.ok("breakout_move", {"room_id": blue})
        for c in everyone:
            await c.wait_event(
                "participant.updated",
                lambda e: (
                    e["data"]["participant"]["participant_id"] == carol.participant_id
                    and e["data"]["changed"] == ["room"]
                ),
            )

        # A room's chat, reactions and board stay in it; the main room's stay out of it.
        marks = {c.participant_id: len(c.events) for c in everyone}
        await bob.ok("chat", {"text": "only in red"})
        await bob.ok("wb_stroke", {"color": "#ff0000", "width": 3, "points": [[0, 0], [1, 1]]})
        await dan.ok("chat", {"text": "only in main"})
        await host.ok("breakout_broadcast", {"text": "Five minutes left"})
        seen: dict[str, list[str]] = {}
        for c in everyone:
            events = await c.events_until_now(marks[c.participant_id])
            seen[c.name] = [
                e["data"]["message"]["text"] if e["event"] == "chat.message" else e["event"]
                for e in events
                if e["event"] in ("chat.message", "whiteboard.stroke", "breakouts.broadcast")
            ]
        assert seen == {
            "Hana Host": ["only in main", "breakouts.broadcast"],
            "Bob": ["only in red", "whiteboard.stroke", "breakouts.broadcast"],
            "Carol": ["breakouts.broadcast"],
            "Dan": ["only in main", "breakouts.broadcast"],
        }

        # Help from a room reaches the moderators only.
        mark = len(carol.events)
        await bob.ok("breakout_help")
        helped = await host.wait_event("breakouts.help")
        assert helped["data"] == {
            "participant_id": bob.participant_id,
            "name": "Bob",
            "room_id": red,
            "room_name": "Red",
        }
        assert not [e for e in await carol.events_until_now(mark) if e["event"] == "breakouts.help"]
        assert await refusal(dan, "breakout_help", {}) == "conflict"  # in the main room

        # A moderator visits any room and finds its chat and board there.
        visit = await host.ok("breakout_move", {"room_id": red})
        assert [m["text"] for m in visit["chat"]] == ["only in red"]
        assert len(visit["whiteboard"]) == 1
        # And a moderator moves someone while the rooms are open.
        await host.ok("breakout_assign", {"participant_id": dan.participant_id, "room_id": blue})
        await dan.wait_event(
            "participant.updated",
            lambda e: (
                e["data"]["participant"]["participant_id"] == dan.participant_id
                and e["data"]["participant"]["room"] == blue
            ),
        )

        closed = await host.ok("breakout_close", {"countdown": 0})
        assert closed["breakouts"]["state"] == "ready"
        # Rooms closed: back to the main room, and not in again.
        assert await refusal(bob, "breakout_move", {"room_id": red}) == "conflict"
        for c in everyone:
            back = await c.ok("breakout_move", {"room_id": ""})
            assert back["room_id"] == "" and [m["text"] for m in back["chat"]] == ["only in main"]

        summary = (await host_api.get(f"/api/meetings/{mid}/summary")).json()
        rooms = {
            a["name"]: [(s["room"], s["to"] is not None) for s in a["rooms"]]
            for a in summary["attendance"]
        }
        assert rooms == {
            "Hana Host": [("Red", True)],
            "Bob": [("Red", True)],
            "Carol": [("Blue", True)],
            "Dan": [("Blue", True)],
        }
        csv_rows = (await host_api.get(f"/api/meetings/{mid}/summary.csv?part=rooms")).text
        assert csv_rows.splitlines()[0] == "name,participant_id,room,from,to"
        assert sorted(line.split(",")[2] for line in csv_rows.splitlines()[1:]) == [
            "Blue",
            "Blue",
            "Red",
            "Red",
        ]
        assert {m["text"]: m["room"] for m in summary["chat"]} == {
            "only in red": "Red",
            "only in main": None,
        }
    finally:
        for c in everyone:
            await c.close()


async def test_random_deals_everyone_evenly_and_choose_lets_people_pick(twin: Twin) -> None:
    host_api, mid = await hosted_meeting(twin.base_url)
    host, _ = await entered(twin.ws_url, host_api, mid, "Hana Host")
    people = [(await entered(twin.ws_url, Api(twin.base_url), mid, f"P{i}"))[0] for i in range(5)]
    try:
        dealt = (await host.ok("breakout_setup", {"rooms": ["A", "B"], "assignment": "random"}))[
            "breakouts"
        ]
        assigned = dealt["assignments"]
        assert set(assigned) == {p.participant_id for p in people}  # not the host
        counts = sorted(list(assigned.values()).count(r["room_id"]) for r in dealt["rooms"])
        assert counts == [2, 3]

        chosen = (await host.ok("breakout_setup", {"rooms": ["A", "B"], "assignment": "choose"}))[
            "breakouts"
        ]
        # A new setup has new room ids: nothing of an earlier one carries over.
        assert not {r["room_id"] for r in chosen["rooms"]} & {r["room_id"] for r in dealt["rooms"]}
        await host.ok("breakout_open", {"countdown": 30})
        b = chosen["rooms"][1]["room_id"]
        # The countdown runs: too early to go in.
        assert await refusal(people[0], "breakout_move", {"room_id": b}) == "conflict"
        await host.ok("breakout_close", {"countdown": 0})
        await host.ok("breakout_open", {"countdown": 0})
        for p in people:
            assert (await p.ok("breakout_move", {"room_id": b}))["room_id"] == b
        # Open rooms cannot be set up again under people's feet.
        assert await refusal(host, "breakout_setup", {"rooms": ["X"]}) == "conflict"

        # Someone who leaves and joins again after the rooms closed is in the main room.
        await host.ok("breakout_close", {"countdown": 0})
        rejoined = await people[0].ok("join")
        assert rejoined["you"]["room"] == ""
    finally:
        await host.close()
        for p in people:
            await p.close()


async def test_bad_breakout_input_is_refused_and_changes_nothing(twin: Twin) -> None:
    host_api, mid = await hosted_meeting(twin.base_url)
    host, snap = await entered(twin.ws_url, host_api, mid, "Hana Host")
    sid = snap["meeting"]["session_id"]
    bob, _ = await entered(twin.ws_url, Api(twin.base_url), mid, "Bob")
    try:
        room = (await host.ok("breakout_setup", {"rooms": ["Red"]}))["breakouts"]["rooms"][0]
        red = room["room_id"]
        before = _state(twin, mid, sid)
        refusals: list[tuple[SignalingClient, str, dict[str, Any], str]] = [
            # an attendee trying moderator actions
            (bob, "breakout_setup", {"rooms": ["Mine"]}, "forbidden"),
            (bob, "breakout_open", {}, "forbidden"),
            (
                bob,
                "breakout_assign",
                {"participant_id": bob.participant_id, "room_id": red},
                "forbidden",
            ),
            (bob, "breakout_broadcast", {"text": "hi"}, "forbidden"),
            (bob, "breakout_close", {}, "forbidden"),
            # rooms and people that do not exist
            (
                host,
                "breakout_assign",
                {"participant_id": bob.participant_id, "room_id": "b9r9"},
                "not_found",
            ),
            (host, "breakout_assign", {"participant_id": "p_nobody", "room_id": red}, "not_found"),
            (host, "breakout_setup", {"rooms": ["A"], "assignments": {"p_nobody": 1}}, "not_found"),
            (bob, "breakout_move", {"room_id": "b9r9"}, "not_found"),
            # malformed
            (host, "breakout_setup", {"rooms": []}, "invalid_input"),
            (host, "breakout_setup", {"rooms": [f"R{i}" for i in range(51)]}, "invalid_input"),
            (host, "breakout_setup", {"rooms": ["Same", "same ", "Same"]}, "invalid_input"),
            (host, "breakout_setup", {"rooms": ["x" * 41]}, "invalid_input"),
            (host, "breakout_setup", {"rooms": ["bad\u0000name"]}, "invalid_input"),
            (host, "breakout_setup", {"rooms": [{"name": "A"}]}, "invalid_input"),
            (host, "breakout_setup", {"rooms": ["A"], "assignment": "lottery"}, "invalid_input"),
            (
                host,
                "breakout_setup",
                {"rooms": ["A"], "assignments": {bob.participant_id: 2}},
                "invalid_input",
            ),
            (
                host,
                "breakout_setup",
                {"rooms": ["A"], "assignments": {bob.participant_id: True}},
                "invalid_input",
            ),
            (host, "breakout_setup", {"rooms": ["A"], "assignments": [1]}, "invalid_input"),
            (
                host,
                "breakout_setup",
                {"rooms": ["A"], "assignments": {"bad id!": 1}},
                "invalid_input",
            ),
            (host, "breakout_open", {"countdown": -1}, "invalid_input"),
            (host, "breakout_open", {"countdown": 61}, "invalid_input"),
            (host, "breakout_open", {"countdown": True}, "invalid_input"),
            (host, "breakout_open", {"countdown": "5"}, "invalid_input"),
            (host, "breakout_broadcast", {"text": "x" * 501}, "invalid_input"),
            (bob, "breakout_move", {"room_id": "../main"}, "invalid_input"),
            (bob, "breakout_move", {"room_id": None}, "invalid_input"),
            (bob, "breakout_move", {"room_id": red, "extra": 1}, "invalid_input"),
            # not now
            (bob, "breakout_move", {"room_id": red}, "conflict"),
            (host, "breakout_close", {}, "conflict"),
            (host, "breakout_broadcast", {"text": "hi"}, "conflict"),
        ]
        for client, action, data, code in refusals:
            assert await refusal(client, action, data) == code, (action, data)
        assert _state(twin, mid, sid) == before

        # A replayed move is refused and moves nobody twice.
        await host.ok("breakout_assign", {"participant_id": bob.participant_id, "room_id": red})
        await host.ok("breakout_open", {})
        first = await bob.request("breakout_move", {"room_id": red}, request_id="move-1")
        assert first["type"] == "reply"
        after_move = _state(twin, mid, sid)
        again = await bob.request("breakout_move", {"room_id": ""}, request_id="move-1")
        assert again["type"] == "error" and again["error"]["code"] == "duplicate_request"
        assert _state(twin, mid, sid) == after_move
    finally:
        await host.close()
        await bob.close()


async def test_webinars_have_no_breakout_rooms(twin: Twin) -> None:
    host_api, mid = await hosted_meeting(twin.base_url, kind="webinar")
    host, snap = await entered(twin.ws_url, host_api, mid, "Hana Host")
    try:
        assert "breakouts" not in snap
        assert await refusal(host, "breakout_setup", {"rooms": ["A"]}) == "conflict"
        assert await refusal(host, "breakout_move", {"room_id": ""}) == "conflict"
    finally:
        await host.close()
