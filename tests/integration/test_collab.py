"""Polls, Q&A and the whiteboard over real WebSockets against the twin: live results seen by
every participant, once-only votes, moderator-only controls, late joiners' snapshots, and bad
input that changes nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.integration.client import Api, SignalingClient, entered, hosted_meeting, refusal
from tests.integration.conftest import Twin


def _state(twin: Twin, mid: str) -> list[dict[str, Any]]:
    """Everything stored for the meeting except request records (as test_bad_input does)."""
    return [i for i in twin.meeting_items(mid) if not i["sk"].startswith("R#")]


async def test_poll_live_results_seen_by_three_and_votes_once(twin: Twin) -> None:
    host_api, mid = await hosted_meeting(twin.base_url)
    host, _ = await entered(twin.ws_url, host_api, mid, "Hana Host")
    guest = Api(twin.base_url)
    bob, _ = await entered(twin.ws_url, guest, mid, "Bob")
    carol, _ = await entered(twin.ws_url, guest, mid, "Carol")
    clients = (host, bob, carol)

    created = await host.ok(
        "poll_create", {"question": "Lunch?", "options": ["Pizza", "Sushi", "Salad"]}
    )
    poll_id = created["poll_id"]
    for c in clients:
        event = await c.wait_event("poll.created")
        poll = event["data"]["poll"]
        assert (poll["poll_id"], poll["question"], poll["options"]) == (
            poll_id,
            "Lunch?",
            ["Pizza", "Sushi", "Salad"],
        )
        assert (poll["status"], poll["counts"], poll["voters"], poll["multiple"]) == (
            "open",
            [0, 0, 0],
            0,
            False,
        )
        assert event["seq"] > 0

    voted = await bob.ok("poll_vote", {"poll_id": poll_id, "choices": [1]})
    assert voted["poll"]["my_choices"] == [1] and voted["poll"]["counts"] == [0, 1, 0]
    await carol.ok("poll_vote", {"poll_id": poll_id, "choices": [1]})
    await host.ok("poll_vote", {"poll_id": poll_id, "choices": [0]})

    def final(e: dict[str, Any]) -> bool:
        return bool(e["data"]["poll"]["voters"] == 3)

    for c in clients:
        event = await c.wait_event("poll.updated", final)
        assert event["data"]["poll"]["counts"] == [1, 2, 0], c.name
        assert "my_choices" not in event["data"]["poll"], "an event revealed someone's choice"
        # In commit order, ending at the last vote. Not necessarily every version: an update
        # carries the poll as it is at delivery, so votes that land in one outbox batch (or
        # before the batch is read) reach pages as one update (docs/outbox.md).
        versions = [e["data"]["poll"]["version"] for e in c.events_named("poll.updated")]
        assert versions == sorted(versions) and versions[-1] == 4, (c.name, versions)

    before = _state(twin, mid)
    assert await refusal(bob, "poll_vote", {"poll_id": poll_id, "choices": [0]}) == "conflict"
    assert _state(twin, mid) == before

    assert await refusal(bob, "poll_close", {"poll_id": poll_id}) == "forbidden"
    await host.ok("poll_close", {"poll_id": poll_id})
    for c in clients:
        closed = await c.wait_event("poll.closed")
        assert closed["data"]["poll"]["status"] == "closed"
        assert closed["data"]["poll"]["counts"] == [1, 2, 0]
    assert await refusal(carol, "poll_vote", {"poll_id": poll_id, "choices": [0]}) == "conflict"

    # A multiple-choice poll; a late joiner sees both polls and, for the one they voted in,
    # their own choices only.
    multi = await host.ok(
        "poll_create", {"question": "Which days?", "options": ["Mon", "Tue"], "multiple": True}
    )
    await carol.ok("poll_vote", {"poll_id": multi["poll_id"], "choices": [0, 1]})
    await carol.close()
    carol2, snapshot = await entered(twin.ws_url, guest, mid, "Carol again")
    polls = {p["poll_id"]: p for p in snapshot["polls"]}
    assert polls[poll_id]["status"] == "closed" and "my_choices" not in polls[poll_id]
    assert polls[multi["poll_id"]]["counts"] == [1, 1]
    for c in (host, bob, carol2):
        await c.close()


async def test_attendee_cannot_use_host_collab_controls(twin: Twin) -> None:
    host_api, mid = await hosted_meeting(twin.base_url, kind="webinar")
    host, _ = await entered(twin.ws_url, host_api, mid, "Hana Host")
    attendee, joined = await entered(twin.ws_url, Api(twin.base_url), mid, "Ann")
    assert joined["you"]["role"] == "attendee"
    poll_id = (await host.ok("poll_create", {"question": "Q?", "options": ["a", "b"]}))["poll_id"]
    question_id = (await attendee.ok("qa_ask", {"text": "Why?"}))["question_id"]
    await host.ok("wb_stroke", {"color": "#112233", "width": 3, "points": [[0, 0], [1, 1]]})
    await attendee.wait_event("whiteboard.stroke")
    await host.wait_event("whiteboard.stroke")  # the host's own copy comes through the outbox too
    before = _state(twin, mid)
    host_events = len(host.events)
    for action, data in [
        ("poll_create", {"question": "Mine?", "options": ["a", "b"]}),
        ("poll_close", {"poll_id": poll_id}),
        ("qa_answer", {"question_id": question_id, "text": "because"}),
        ("qa_dismiss", {"question_id": question_id}),
        ("wb_clear", {}),
        # Webinar attendees are view-only: no drawing either.
        ("wb_stroke", {"color": "#112233", "width": 3, "points": [[0, 0], [1, 1]]}),
    ]:
        assert await refusal(attendee, action, data) == "forbidden", action
    assert _state(twin, mid) == before
    assert await host.events_until_now(host_events) == []
    # What attendees may do, they can: vote.
    await attendee.ok("poll_vote", {"poll_id": poll_id, "choices": [0]})
    for c in (host, attendee):
        await c.close()


async def test_qa_order_upvote_once_answer_and_dismiss(twin: Twin) -> None:
    host_api, mid = await hosted_meeting(twin.base_url)
    host, _ = await entered(twin.ws_url, host_api, mid, "Hana Host")
    guest = Api(twin.base_url)
    bob, _ = await entered(twin.ws_url, guest, mid, "Bob")
    carol, _ = await entered(twin.ws_url, guest, mid, "Carol")

    first = (await bob.ok("qa_ask", {"text": "  When is the release?  "}))["question_id"]
    second = (await carol.ok("qa_ask", {"text": "Is there a recording?"}))["question_id"]
    third = (await carol.ok("qa_ask", {"text": "Off topic"}))["question_id"]
    asked = await host.wait_event(
        "qa.asked", lambda e: e["data"]["question"]["text"] == "Off topic"
    )
    assert asked["data"]["question"]["asked_by_name"] == "Carol"
    assert [e["data"]["question"]["text"] for e in host.events_named("qa.asked")] == [
        "When is the release?",
        "Is there a recording?",
        "Off topic",
    ]

    assert await refusal(carol, "qa_upvote", {"question_id": second}) == "forbidden"  # own
    await bob.ok("qa_upvote", {"question_id": second})
    await host.ok("qa_upvote", {"question_id": second})
    await host.ok("qa_upvote", {"question_id": first})
    before = _state(twin, mid)
    assert await refusal(bob, "qa_upvote", {"question_id": second}) == "conflict"
    assert _state(twin, mid) == before

    updated = await carol.wait_event(
        "qa.updated",
        lambda e: (
            e["data"]["question"]["question_id"] == second and e["data"]["question"]["votes"] == 2
        ),
    )
    assert updated["data"]["question"]["status"] == "open"

    assert await refusal(bob, "qa_answer", {"question_id": first}) == "forbidden"
    await host.ok("qa_answer", {"question_id": first, "text": "Next week"})
    await host.ok("qa_dismiss", {"question_id": third})
    answered = await bob.wait_event(
        "qa.updated", lambda e: e["data"]["question"]["status"] == "answered"
    )
    assert answered["data"]["question"]["answer"] == "Next week"
    dismissed = await bob.wait_event(
        "qa.updated", lambda e: e["data"]["question"]["status"] == "dismissed"
    )
    assert dismissed["data"]["question"]["question_id"] == third
    assert await refusal(bob, "qa_upvote", {"question_id": third}) == "conflict"

    # A late joiner's snapshot orders by votes, then age.
    dave, snapshot = await entered(twin.ws_url, guest, mid, "Dave")
    assert [(q["question_id"], q["votes"], q["status"]) for q in snapshot["questions"]] == [
        (second, 2, "open"),
        (first, 1, "answered"),
        (third, 0, "dismissed"),
    ]
    for c in (host, bob, carol, dave):
        await c.close()


async def test_whiteboard_strokes_reach_others_and_late_joiners_then_clear(twin: Twin) -> None:
    host_api, mid = await hosted_meeting(twin.base_url)
    host, _ = await entered(twin.ws_url, host_api, mid, "Hana Host")
    guest = Api(twin.base_url)
    bob, _ = await entered(twin.ws_url, guest, mid, "Bob")
    stroke = {"color": "#FF0000", "width": 4, "points": [[0.1, 0.2], [0.5, 0.55555555], [1, 1]]}
    stroke_id = (await bob.ok("wb_stroke", stroke))["stroke_id"]
    seen = await host.wait_event("whiteboard.stroke")
    assert seen["data"]["stroke"] == {
        "stroke_id": stroke_id,
        "by": bob.participant_id,
        "color": "#ff0000",
        "width": 4,
        "points": [[0.1, 0.2], [0.5, 0.5556], [1, 1]],
        "room": "",
    }
    second = (
        await host.ok("wb_stroke", {"color": "#00ff00", "width": 1.5, "points": [[0, 0], [0, 1]]})
    )["stroke_id"]

    carol, snapshot = await entered(twin.ws_url, guest, mid, "Carol")
    assert [s["stroke_id"] for s in snapshot["whiteboard"]] == [stroke_id, second]
    assert snapshot["whiteboard"][1]["width"] == 1.5
    assert snapshot["whiteboard_more"] is False

    assert await refusal(bob, "wb_clear", {}) == "forbidden"
    await host.ok("wb_clear", {})
    for c in (bob, carol):
        cleared = await c.wait_event("whiteboard.cleared")
        assert cleared["seq"] > second
    third = (await bob.ok("wb_stroke", stroke))["stroke_id"]
    dave, snapshot = await entered(twin.ws_url, guest, mid, "Dave")
    assert [s["stroke_id"] for s in snapshot["whiteboard"]] == [third]
    history = await dave.ok("wb_history", {"before": third})
    assert history == {"strokes": [], "more": False}
    # The cleared strokes were deleted after the clear (housekeeping), not only hidden.
    assert [i["stroke_id"] for i in twin.meeting_items(mid) if i["sk"].startswith("W#")] == [third]
    for c in (host, bob, carol, dave):
        await c.close()


async def test_whiteboard_snapshot_pages_older_strokes(twin: Twin) -> None:
    host_api, mid = await hosted_meeting(twin.base_url)
    host, _ = await entered(twin.ws_url, host_api, mid, "Hana Host")
    # Large strokes, so the snapshot's budget leaves some for wb_history.
    points = [[i / 1000, (i * 7 % 1000) / 1000 + 0.0001] for i in range(1000)]
    ids = []
    for _ in range(5):
        ids.append(
            (await host.ok("wb_stroke", {"color": "#000000", "width": 2, "points": points}))[
                "stroke_id"
            ]
        )
    late, snapshot = await entered(twin.ws_url, Api(twin.base_url), mid, "Late")
    shown = [s["stroke_id"] for s in snapshot["whiteboard"]]
    assert snapshot["whiteboard_more"] is True and shown == ids[-len(shown) :]
    older = await late.ok("wb_history", {"before": shown[0]})
    assert [s["stroke_id"] for s in older["strokes"]] + shown == ids
    assert older["more"] is False
    for c in (host, late):
        await c.close()


async def test_bad_collab_input_changes_nothing(twin: Twin) -> None:
    host_api, mid = await hosted_meeting(twin.base_url)
    host, _ = await entered(twin.ws_url, host_api, mid, "Hana Host")
    bob, _ = await entered(twin.ws_url, Api(twin.base_url), mid, "Bob")
    poll_id = (await host.ok("poll_create", {"question": "Q?", "options": ["a", "b"]}))["poll_id"]
    question_id = (await bob.ok("qa_ask", {"text": "Why?"}))["question_id"]
    # Ids from another meeting name nothing here.
    other_api, other_mid = await hosted_meeting(twin.base_url)
    other, _ = await entered(twin.ws_url, other_api, other_mid, "Olga")
    other_poll = (await other.ok("poll_create", {"question": "X?", "options": ["a", "b"]}))[
        "poll_id"
    ]
    other_question = (await other.ok("qa_ask", {"text": "Elsewhere?"}))["question_id"]
    await bob.wait_event("poll.created")

    before = _state(twin, mid)
    before_requests = [i for i in twin.meeting_items(mid) if i["sk"].startswith("R#")]
    good_points = [[0, 0], [1, 1]]
    cases: list[tuple[SignalingClient, str, dict[str, Any], str]] = [
        (host, "poll_create", {"question": 5, "options": ["a", "b"]}, "invalid_input"),
        (host, "poll_create", {"question": "", "options": ["a", "b"]}, "invalid_input"),
        (host, "poll_create", {"question": "x" * 301, "options": ["a", "b"]}, "invalid_input"),
        (host, "poll_create", {"question": "Q", "options": ["a"]}, "invalid_input"),
        (host, "poll_create", {"question": "Q", "options": ["a"] * 11}, "invalid_input"),
        (host, "poll_create", {"question": "Q", "options": ["a", "x" * 101]}, "invalid_input"),
        (host, "poll_create", {"question": "Q", "options": ["a", 2]}, "invalid_input"),
        (host, "poll_create", {"question": "Q", "options": ["a", "a"]}, "invalid_input"),
        (host, "poll_create", {"question": "Q", "options": "ab"}, "invalid_input"),
        (
            host,
            "poll_create",
            {"question": "Q", "options": ["a", "b"], "multiple": "yes"},
            "invalid_input",
        ),
        (host, "poll_create", {"question": "Q", "options": ["a", "b"], "x": 1}, "invalid_input"),
        (bob, "poll_vote", {"poll_id": poll_id, "choices": [2]}, "invalid_input"),
        (bob, "poll_vote", {"poll_id": poll_id, "choices": [-1]}, "invalid_input"),
        (bob, "poll_vote", {"poll_id": poll_id, "choices": [0, 1]}, "invalid_input"),
        (bob, "poll_vote", {"poll_id": poll_id, "choices": []}, "invalid_input"),
        (bob, "poll_vote", {"poll_id": poll_id, "choices": [True]}, "invalid_input"),
        (bob, "poll_vote", {"poll_id": poll_id, "choices": ["0"]}, "invalid_input"),
        (bob, "poll_vote", {"poll_id": poll_id, "choices": 0}, "invalid_input"),
        (bob, "poll_vote", {"poll_id": 7, "choices": [0]}, "invalid_input"),
        (bob, "poll_vote", {"poll_id": "../x", "choices": [0]}, "invalid_input"),
        (bob, "poll_vote", {"poll_id": "pl_nope", "choices": [0]}, "not_found"),
        (bob, "poll_vote", {"poll_id": other_poll, "choices": [0]}, "not_found"),
        (host, "poll_close", {"poll_id": other_poll}, "not_found"),
        (host, "poll_close", {}, "invalid_input"),
        (bob, "qa_ask", {"text": ""}, "invalid_input"),
        (bob, "qa_ask", {"text": "   "}, "invalid_input"),
        (bob, "qa_ask", {"text": "x" * 1001}, "invalid_input"),
        (bob, "qa_ask", {"text": ["x"]}, "invalid_input"),
        (bob, "qa_upvote", {"question_id": other_question}, "not_found"),
        (bob, "qa_upvote", {"question_id": None}, "invalid_input"),
        (host, "qa_answer", {"question_id": question_id, "text": "x" * 1001}, "invalid_input"),
        (host, "qa_answer", {"question_id": question_id, "text": 3}, "invalid_input"),
        (host, "qa_answer", {"question_id": other_question}, "not_found"),
        (host, "qa_dismiss", {"question_id": other_question}, "not_found"),
        (host, "qa_dismiss", {"question_id": question_id, "why": "x"}, "invalid_input"),
        (bob, "wb_stroke", {"color": "red", "width": 2, "points": good_points}, "invalid_input"),
        (bob, "wb_stroke", {"color": "#12345", "width": 2, "points": good_points}, "invalid_input"),
        (
            bob,
            "wb_stroke",
            {"color": "#123456", "width": 0, "points": good_points},
            "invalid_input",
        ),
        (
            bob,
            "wb_stroke",
            {"color": "#123456", "width": 41, "points": good_points},
            "invalid_input",
        ),
        (
            bob,
            "wb_stroke",
            {"color": "#123456", "width": True, "points": good_points},
            "invalid_input",
        ),
        (bob, "wb_stroke", {"color": "#123456", "width": 2, "points": [[0, 0]]}, "invalid_input"),
        (
            bob,
            "wb_stroke",
            {"color": "#123456", "width": 2, "points": [[0, 0]] * 1001},
            "invalid_input",
        ),
        (
            bob,
            "wb_stroke",
            {"color": "#123456", "width": 2, "points": [[0, 0], [1.5, 0]]},
            "invalid_input",
        ),
        (
            bob,
            "wb_stroke",
            {"color": "#123456", "width": 2, "points": [[0, 0], [0, 0, 0]]},
            "invalid_input",
        ),
        (
            bob,
            "wb_stroke",
            {"color": "#123456", "width": 2, "points": [[0, 0], ["0", 0]]},
            "invalid_input",
        ),
        (bob, "wb_stroke", {"color": "#123456", "width": 2}, "invalid_input"),
        (host, "wb_clear", {"all": True}, "invalid_input"),
        (bob, "wb_history", {"before": "1"}, "invalid_input"),
        (bob, "wb_history", {"before": 0}, "invalid_input"),
    ]
    for client, action, data, code in cases:
        assert await refusal(client, action, data) == code, (action, data)
    assert (await bob.ok("ping"))["pong"] > 0  # the connection stays up
    assert _state(twin, mid) == before
    assert [i for i in twin.meeting_items(mid) if i["sk"].startswith("R#")] == before_requests
    for c in (host, bob, other):
        await c.close()


async def test_replayed_collab_requests_change_nothing(twin: Twin) -> None:
    host_api, mid = await hosted_meeting(twin.base_url)
    host, _ = await entered(twin.ws_url, host_api, mid, "Hana Host")
    bob, _ = await entered(twin.ws_url, Api(twin.base_url), mid, "Bob")
    created = await host.request(
        "poll_create", {"question": "Q?", "options": ["a", "b"]}, request_id="poll-1"
    )
    poll_id = created["data"]["poll_id"]
    await bob.request("poll_vote", {"poll_id": poll_id, "choices": [0]}, request_id="vote-1")
    await bob.request("qa_ask", {"text": "Hmm?"}, request_id="ask-1")
    await bob.request(
        "wb_stroke", {"color": "#000000", "width": 2, "points": [[0, 0], [1, 1]]}, request_id="w-1"
    )
    await host.wait_event("whiteboard.stroke")
    before = _state(twin, mid)
    events = len(host.events)
    for client, action, data, rid in [
        (host, "poll_create", {"question": "Q?", "options": ["a", "b"]}, "poll-1"),
        (bob, "poll_vote", {"poll_id": poll_id, "choices": [1]}, "vote-1"),
        (bob, "qa_ask", {"text": "Hmm?"}, "ask-1"),
        (bob, "wb_stroke", {"color": "#000000", "width": 2, "points": [[0, 0], [1, 1]]}, "w-1"),
        (host, "wb_clear", {}, "poll-1"),
    ]:
        reply = await client.request(action, data, request_id=rid)
        assert reply["type"] == "error" and reply["error"]["code"] == "duplicate_request", reply
    assert _state(twin, mid) == before
    assert await host.events_until_now(events) == []
    for c in (host, bob):
        await c.close()


async def test_poll_cap_refuses_the_twenty_first_poll(twin: Twin) -> None:
    host_api, mid = await hosted_meeting(twin.base_url)
    host, _ = await entered(twin.ws_url, host_api, mid, "Hana Host")
    for i in range(20):
        await host.ok("poll_create", {"question": f"Q{i}?", "options": ["a", "b"]})
    before = _state(twin, mid)
    assert await refusal(
        host, "poll_create", {"question": "One too many?", "options": ["a", "b"]}
    ) == ("conflict")
    after = _state(twin, mid)
    # Only the event counter moved (the refusal came from the cap inside the transaction).
    assert [i for i in after if i["sk"] != "META"] == [i for i in before if i["sk"] != "META"]
    late, snapshot = await entered(twin.ws_url, Api(twin.base_url), mid, "Late")
    assert [p["question"] for p in snapshot["polls"]] == [f"Q{i}?" for i in range(20)]
    for c in (host, late):
        await c.close()


async def test_stroke_cap_refuses_until_a_clear(
    twin: Twin, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The twin runs the handlers in this process, so a small cap stands in for 5,000 strokes.
    monkeypatch.setattr("townhall.store.whiteboard.MAX_STROKES", 3)
    host_api, mid = await hosted_meeting(twin.base_url)
    host, _ = await entered(twin.ws_url, host_api, mid, "Hana Host")
    stroke = {"color": "#000000", "width": 2, "points": [[0, 0], [1, 1]]}
    for _ in range(3):
        await host.ok("wb_stroke", stroke)
    before = [i for i in _state(twin, mid) if i["sk"] != "META"]
    assert await refusal(host, "wb_stroke", stroke) == "conflict"
    assert [i for i in _state(twin, mid) if i["sk"] != "META"] == before
    await host.ok("wb_clear", {})
    await host.ok("wb_stroke", stroke)
    await host.close()


async def test_concurrent_votes_end_in_the_same_counts_everywhere(twin: Twin) -> None:
    host_api, mid = await hosted_meeting(twin.base_url)
    host, _ = await entered(twin.ws_url, host_api, mid, "Hana Host")
    guest = Api(twin.base_url)
    voters = [(await entered(twin.ws_url, guest, mid, f"Voter {i}"))[0] for i in range(6)]
    poll_id = (await host.ok("poll_create", {"question": "Now?", "options": ["a", "b", "c"]}))[
        "poll_id"
    ]
    for v in voters:
        await v.wait_event("poll.created")
    # All at once: the events may cross on the wire; the highest version wins on every client.
    await asyncio.gather(
        *(v.ok("poll_vote", {"poll_id": poll_id, "choices": [i % 3]}) for i, v in enumerate(voters))
    )
    for c in (host, *voters):
        try:
            await c.wait_event(
                "poll.updated", lambda e: e["data"]["poll"]["voters"] == 6, timeout=20
            )
        except TimeoutError:
            seen = [(e["seq"], e["data"]["poll"]["voters"]) for e in c.events_named("poll.updated")]
            raise AssertionError(f"{c.name} never saw all six votes: {seen}") from None
        newest = max(
            (e["data"]["poll"] for e in c.events_named("poll.updated")), key=lambda p: p["version"]
        )
        assert (newest["counts"], newest["voters"], newest["version"]) == ([2, 2, 2], 6, 7)
    for c in (host, *voters):
        await c.close()


async def test_a_full_meeting_snapshot_still_fits_one_message(twin: Twin) -> None:
    host_api, mid = await hosted_meeting(twin.base_url)
    host, _ = await entered(twin.ws_url, host_api, mid, "Hana Host")
    # 50 chat messages of 4,000 two-byte characters (400 KB of UTF-8) and a big whiteboard.
    for i in range(50):
        await host.ok("chat", {"text": f"{i:02d}" + "é" * 3998})
    points = [[i / 1000, 0.5] for i in range(1000)]
    strokes = [
        (await host.ok("wb_stroke", {"color": "#000000", "width": 2, "points": points}))[
            "stroke_id"
        ]
        for _ in range(4)
    ]
    late, snapshot = await entered(twin.ws_url, Api(twin.base_url), mid, "Late")
    size = len(json.dumps(snapshot, separators=(",", ":"), ensure_ascii=False).encode())
    assert size <= 128 * 1024, size
    # What was shed: the oldest strokes (paged back on demand) and the oldest messages.
    assert snapshot["whiteboard_more"] is True
    held = [s["stroke_id"] for s in snapshot["whiteboard"]]
    assert held == strokes[len(strokes) - len(held) :]
    texts = [m["text"][:2] for m in snapshot["chat"]]
    assert texts and texts == [f"{i:02d}" for i in range(50 - len(texts), 50)]
    before = held[0] if held else snapshot["seq"] + 1
    older = await late.ok("wb_history", {"before": before})
    assert [s["stroke_id"] for s in older["strokes"]] + held == strokes
    for c in (host, late):
        await c.close()


async def test_admitted_from_the_waiting_room_gets_the_collab_state(twin: Twin) -> None:
    host_api, mid = await hosted_meeting(twin.base_url, waiting_room=True)
    host, _ = await entered(twin.ws_url, host_api, mid, "Hana Host")
    poll_id = (await host.ok("poll_create", {"question": "Q?", "options": ["a", "b"]}))["poll_id"]
    await host.ok("wb_stroke", {"color": "#000000", "width": 2, "points": [[0, 0], [1, 1]]})
    guest, waiting = await entered(twin.ws_url, Api(twin.base_url), mid, "Gus")
    assert waiting["status"] == "waiting" and "polls" not in waiting  # nothing before admission
    await host.ok("admit", {"participant_id": guest.participant_id})
    admitted = await guest.wait_event("you.admitted")
    assert [p["poll_id"] for p in admitted["data"]["polls"]] == [poll_id]
    assert len(admitted["data"]["whiteboard"]) == 1 and admitted["data"]["questions"] == []
    # The admission opened Gus's attendance interval.
    sessions = [
        i for i in twin.meeting_items(mid) if i["sk"].startswith(f"A#{guest.participant_id}#")
    ]
    assert len(sessions) == 1 and "left_at" not in sessions[0]
    await guest.close()
    await host.wait_dropped(guest.participant_id)
    sessions = [
        i for i in twin.meeting_items(mid) if i["sk"].startswith(f"A#{guest.participant_id}#")
    ]
    assert sessions[0]["left_at"] >= sessions[0]["joined_at"]
    await host.close()
