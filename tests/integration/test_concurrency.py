"""Actions that take a counter or a conditional write, raced by many participants at once over
real sockets, counted exactly afterwards.

The twin's moto server runs with a very short thread switch interval here, so its request
threads are preempted inside read-then-write windows: a store that did not isolate concurrent
writes as DynamoDB does would lose or duplicate some of these (see
tests/twin/test_twin_dynamodb_isolation.py for the store's own checks).
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from infra.twin import moto_server
from infra.twin.server import TwinOptions
from tests.integration.client import Api, SignalingClient, new_guest_key
from tests.integration.conftest import Twin, _start
from townhall.store.polls import MAX_POLLS
from townhall.store.whiteboard import MAX_STROKES

PEOPLE = 10


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv(moto_server.SWITCH_INTERVAL_VARIABLE, "0.00001")
        started = _start(tmp_path_factory, TwinOptions())
        running = next(started)
    yield running
    next(started, None)


async def _room(
    twin: Twin, people: int = PEOPLE, *, cohosts: int = 0
) -> tuple[Api, str, list[SignalingClient]]:
    """A meeting with `people` joined (the host first), the next `cohosts` of them co-hosts."""
    host_api = Api(twin.base_url)
    await host_api.sign_up(f"host-{uuid.uuid4().hex[:8]}@example.com", "Hana Host")
    mid = (await host_api.create_meeting())["meeting_id"]
    host = await SignalingClient.enter(twin.ws_url, await host_api.join(mid, "Hana Host"))
    await host.ok("join")
    guests = Api(twin.base_url)
    clients = [host]
    for n in range(people - 1):
        client = await SignalingClient.enter(twin.ws_url, await guests.join(mid, f"Guest {n}"))
        await client.ok("join")
        clients.append(client)
    await guests.close()
    for client in clients[1 : 1 + cohosts]:
        await host.ok("promote", {"participant_id": client.participant_id})
    return host_api, mid, clients


async def _close(api: Api, clients: list[SignalingClient]) -> None:
    await asyncio.gather(*(c.close() for c in clients))
    await api.close()


async def test_a_burst_of_chats_stores_and_delivers_each_once(twin: Twin) -> None:
    host_api, mid, clients = await _room(twin)
    per_person = 30  # 300 in all

    async def talk(client: SignalingClient) -> list[int]:
        ids = []
        for n in range(per_person):
            reply = await client.request("chat", {"text": f"{client.name} {n}"}, timeout=60)
            assert reply["type"] == "reply", reply
            ids.append(int(reply["data"]["message_id"]))
        return ids

    sent = [i for ids in await asyncio.gather(*(talk(c) for c in clients)) for i in ids]
    total = per_person * len(clients)
    assert len(set(sent)) == total

    def received_all(client: SignalingClient) -> bool:
        return len(client.events_named("chat.message")) >= total

    for client in clients:
        await client.wait_for(functools.partial(received_all, client), 60)
        seqs = [e["seq"] for e in client.events_named("chat.message")]
        assert sorted(seqs) == sorted(sent), client.name  # each message once, none lost

    summary = (await host_api.get(f"/api/meetings/{mid}/summary")).json()
    texts = Counter(m["text"] for m in summary["chat"])
    assert len(texts) == total and set(texts.values()) == {1}
    await _close(host_api, clients)


async def test_votes_and_upvotes_raced_count_exactly(twin: Twin) -> None:
    host_api, mid, clients = await _room(twin)
    host = clients[0]
    poll_id = (await host.ok("poll_create", {"question": "Lunch?", "options": ["A", "B"]}))[
        "poll_id"
    ]
    question_id = (await host.ok("qa_ask", {"text": "Why?"}))["question_id"]

    async def act(client: SignalingClient, n: int) -> None:
        # Each twice: the second of each pair must be refused and count nothing.
        for _ in range(2):
            await client.request("poll_vote", {"poll_id": poll_id, "choices": [n % 2]})
            if client is not host:
                await client.request("qa_upvote", {"question_id": question_id})

    await asyncio.gather(*(act(c, n) for n, c in enumerate(clients)))

    snapshot = await _late_snapshot(twin, mid)
    poll = next(p for p in snapshot["polls"] if p["poll_id"] == poll_id)
    assert poll["voters"] == PEOPLE
    assert poll["counts"] == [PEOPLE // 2 + PEOPLE % 2, PEOPLE // 2]
    question = next(q for q in snapshot["questions"] if q["question_id"] == question_id)
    assert question["votes"] == PEOPLE - 1  # everyone but the asker
    await _close(host_api, clients)


async def test_a_join_storm_leaves_every_joined_socket_receiving(twin: Twin) -> None:
    host_api, mid, clients = await _room(twin, people=1)
    host = clients[0]
    guests = Api(twin.base_url)
    grants = await asyncio.gather(*(guests.join(mid, f"Storm {n}") for n in range(16)))
    storm = await asyncio.gather(*(SignalingClient.enter(twin.ws_url, g) for g in grants))
    # The same participants join twice at once, from two sockets each: the later join wins
    # the participant's connection, and exactly that socket must keep receiving.
    seconds = await asyncio.gather(*(SignalingClient.enter(twin.ws_url, g) for g in grants))
    replies = await asyncio.gather(
        *(c.request("join", timeout=60) for c in [*storm, *seconds]),
    )
    assert all(r["type"] == "reply" for r in replies), replies

    await asyncio.sleep(0.5)  # let the replaced sockets be closed
    live = [c for c in [*storm, *seconds] if not c.closed.done()]
    by_participant = Counter(c.participant_id for c in live)
    assert set(by_participant) == {g["participant_id"] for g in grants}
    assert set(by_participant.values()) == {1}, by_participant

    await host.ok("chat", {"text": "after the storm"})
    for client in live:
        await client.wait_event(
            "chat.message", lambda e: e["data"]["message"]["text"] == "after the storm"
        )
    items = {i["sk"]: i for i in twin.meeting_items(mid)}
    for client in live:
        participant = items[f"P#{client.participant_id}"]
        assert participant["status"] == "admitted"
        assert participant["connection_id"] is not None
    await guests.close()
    await _close(host_api, [*storm, *seconds, host])


async def _late_snapshot(twin: Twin, mid: str) -> dict[str, Any]:
    late = Api(twin.base_url)
    client = await SignalingClient.enter(twin.ws_url, await late.join(mid, "Late"))
    snapshot = await client.ok("join")
    await client.close()
    await late.close()
    return snapshot


def _items(twin: Twin, mid: str, prefix: str) -> dict[str, dict[str, Any]]:
    return {i["sk"]: i for i in twin.meeting_items(mid) if i["sk"].startswith(prefix)}


def _states(client: SignalingClient, event: str, kind: str, item_id: str) -> list[dict[str, Any]]:
    """The states of one poll or question (`kind`) that `event`s brought to the client."""
    return [
        e["data"][kind]
        for e in client.events_named(event)
        if e["data"][kind][f"{kind}_id"] == item_id
    ]


def _announced(
    client: SignalingClient, event: str, kind: str, item_ids: list[str], version: int = 0
) -> bool:
    """Whether `event` brought the client each of `item_ids` (at `version` or newer)."""
    return all(
        any(state["version"] >= version for state in _states(client, event, kind, item_id))
        for item_id in item_ids
    )


def _is_conflict(reply: dict[str, Any], words: str) -> bool:
    return (
        reply["type"] == "error"
        and reply["error"]["code"] == "conflict"
        and words in reply["error"]["message"]
    )


async def test_polls_created_at_once_get_distinct_ids_and_stop_exactly_at_the_cap(
    twin: Twin,
) -> None:
    host_api, mid, moderators = await _room(twin, people=4, cohosts=3)

    async def create(client: SignalingClient, n: int) -> dict[str, Any]:
        question = {"question": f"{client.name} {n}?", "options": ["A", "B"]}
        return await client.request("poll_create", question, timeout=60)

    async def burst(per_moderator: int) -> list[dict[str, Any]]:
        return list(
            await asyncio.gather(*(create(c, n) for n in range(per_moderator) for c in moderators))
        )

    first = await burst(4)  # 16 of the 20 a meeting holds
    assert all(r["type"] == "reply" for r in first), first
    second = await burst(3)  # 12 more: exactly 4 of them fit
    accepted = [r["data"]["poll_id"] for r in [*first, *second] if r["type"] == "reply"]
    assert len(accepted) == MAX_POLLS and len(set(accepted)) == MAX_POLLS
    refused = [r for r in second if r["type"] == "error"]
    assert len(refused) == 12 - (MAX_POLLS - 16)
    assert all(_is_conflict(r, f"at most {MAX_POLLS} polls") for r in refused), refused

    stored = _items(twin, mid, "POLL#")
    assert sorted(i["poll_id"] for i in stored.values()) == sorted(accepted)
    snapshot = await _late_snapshot(twin, mid)
    assert sorted(p["poll_id"] for p in snapshot["polls"]) == sorted(accepted)
    for moderator in moderators:  # each announced once, to everyone
        await moderator.wait_for(
            functools.partial(_announced, moderator, "poll.created", "poll", accepted), 30
        )
        created = [e["data"]["poll"]["poll_id"] for e in moderator.events_named("poll.created")]
        assert sorted(created) == sorted(accepted)
    await _close(host_api, moderators)


async def test_a_poll_closed_while_votes_land_counts_none_after_its_close(twin: Twin) -> None:
    host_api, mid, clients = await _room(twin, cohosts=1)
    host, cohost = clients[0], clients[1]
    for round_ in range(3):
        poll_id = (
            await host.ok("poll_create", {"question": f"R{round_}?", "options": ["A", "B"]})
        )["poll_id"]
        votes = [
            c.request("poll_vote", {"poll_id": poll_id, "choices": [n % 2]}, timeout=60)
            for n, c in enumerate(clients)
        ]
        closes = [
            moderator.request("poll_close", {"poll_id": poll_id}, timeout=60)
            for moderator in (host, cohost)
        ]
        half = len(votes) // 2
        replies = await asyncio.gather(*votes[:half], *closes, *votes[half:])
        close_replies = replies[half : half + 2]
        vote_replies = [*replies[:half], *replies[half + 2 :]]

        # Exactly one close, and what it closed is final.
        closed = [r for r in close_replies if r["type"] == "reply"]
        assert len(closed) == 1, close_replies
        assert all(_is_conflict(r, "closed") for r in close_replies if r["type"] == "error")
        final = closed[0]["data"]["poll"]
        assert final["status"] == "closed"
        voted = [n for n, r in enumerate(vote_replies) if r["type"] == "reply"]
        assert all(_is_conflict(r, "closed") for r in vote_replies if r["type"] == "error"), (
            vote_replies
        )
        counts = [sum(1 for n in voted if n % 2 == k) for k in (0, 1)]
        assert (final["counts"], final["voters"]) == (counts, len(voted)), (final, voted)

        items = _items(twin, mid, "")
        poll = items[f"POLL#{poll_id}"]
        assert [int(c) for c in poll["counts"]] == counts and int(poll["voters"]) == len(voted)
        ballots = {sk for sk in items if sk.startswith(f"V#{poll_id}#")}
        assert ballots == {f"V#{poll_id}#{clients[n].participant_id}" for n in voted}

        for client in clients:
            await client.wait_for(
                functools.partial(_announced, client, "poll.closed", "poll", [poll_id]), 30
            )
        await asyncio.sleep(0.3)  # a second close event, if there were one, would be here
        for client in clients:
            [event] = _states(client, "poll.closed", "poll", poll_id)
            assert event["counts"] == counts
            # No update announces a state newer than the close (a vote's may read the poll
            # back once closed: then it is the closed state itself).
            updates = _states(client, "poll.updated", "poll", poll_id)
            assert all(u["version"] <= event["version"] for u in updates), updates
            assert all(u == event for u in updates if u["version"] == event["version"])
    await _close(host_api, clients)


async def test_a_burst_of_questions_stores_each_under_its_own_id(twin: Twin) -> None:
    host_api, mid, clients = await _room(twin)
    per_person = 6  # 60 in all

    async def ask(client: SignalingClient) -> list[str]:
        ids = []
        for n in range(per_person):
            reply = await client.request("qa_ask", {"text": f"{client.name} {n}?"}, timeout=60)
            assert reply["type"] == "reply", reply
            ids.append(reply["data"]["question_id"])
        return ids

    asked = [q for ids in await asyncio.gather(*(ask(c) for c in clients)) for q in ids]
    total = per_person * len(clients)
    assert len(set(asked)) == total
    stored = _items(twin, mid, "Q#")
    assert sorted(i["question_id"] for i in stored.values()) == sorted(asked)
    texts = Counter(i["text"] for i in stored.values())
    assert len(texts) == total and set(texts.values()) == {1}
    host = clients[0]
    await host.wait_for(lambda: len(host.events_named("qa.asked")) >= total, 60)
    announced = [e["data"]["question"]["question_id"] for e in host.events_named("qa.asked")]
    assert sorted(announced) == sorted(asked)
    await _close(host_api, clients)


async def test_an_answer_and_dismissals_raced_on_one_question_have_one_outcome(
    twin: Twin,
) -> None:
    host_api, mid, clients = await _room(twin, people=4, cohosts=2)
    host, first, second, asker = clients
    for round_ in range(4):
        qid = (await asker.ok("qa_ask", {"text": f"Round {round_}?"}))["question_id"]
        text = f"answer {round_}"
        racers = [
            host.request("qa_answer", {"question_id": qid, "text": text}, timeout=60),
            first.request("qa_dismiss", {"question_id": qid}, timeout=60),
            second.request("qa_dismiss", {"question_id": qid}, timeout=60),
        ]
        if round_ % 2:
            racers.reverse()
        replies = await asyncio.gather(*racers)
        answer, *dismissals = reversed(replies) if round_ % 2 else replies
        assert sum(r["type"] == "reply" for r in dismissals) == 1, dismissals
        assert all(_is_conflict(r, "dismissed") for r in dismissals if r["type"] == "error")
        answered = answer["type"] == "reply"
        if not answered:  # the dismissal came first
            assert _is_conflict(answer, "dismissed"), answer

        question = _items(twin, mid, f"Q#{qid}")[f"Q#{qid}"]
        assert question["status"] == "dismissed"
        assert question.get("answer") == (text if answered else None), (question, replies)
        assert int(question["version"]) == 1 + 1 + int(answered)
        # Everyone's newest state of it is the stored one.
        version = int(question["version"])
        for client in clients:
            await client.wait_for(
                functools.partial(_announced, client, "qa.updated", "question", [qid], version),
                30,
            )
            newest = max(_states(client, "qa.updated", "question", qid), key=lambda q: q["version"])
            assert newest["version"] == version and newest["status"] == "dismissed"
            assert newest.get("answer") == question.get("answer")
    await _close(host_api, clients)


async def test_strokes_raced_at_the_whiteboard_cap_accept_exactly_the_room_left(
    twin: Twin,
) -> None:
    host_api, mid, clients = await _room(twin, people=5)
    room_left = 5
    # The strokes before these: only the counter matters to the cap, so it is set as if
    # MAX_STROKES - room_left had been drawn.
    collab = {"pk": {"S": f"M#{mid}#S#{clients[0].session_id}"}, "sk": {"S": "COLLAB"}}
    twin.local.dynamodb_client().update_item(
        TableName=twin.local.table_names["MEETINGS_TABLE"],
        Key=collab,
        UpdateExpression="SET strokes = :n",
        ExpressionAttributeValues={":n": {"N": str(MAX_STROKES - room_left)}},
    )
    before = _items(twin, mid, "W#")
    stroke = {"color": "#112233", "width": 3, "points": [[0, 0], [0.5, 0.5]]}
    replies = await asyncio.gather(
        *(c.request("wb_stroke", stroke, timeout=60) for _ in range(4) for c in clients)
    )
    accepted = sorted(r["data"]["stroke_id"] for r in replies if r["type"] == "reply")
    assert len(accepted) == room_left, replies
    refused = [r for r in replies if r["type"] == "error"]
    assert all(_is_conflict(r, "whiteboard is full") for r in refused), refused
    drawn = {sk: i for sk, i in _items(twin, mid, "W#").items() if sk not in before}
    assert sorted(int(i["stroke_id"]) for i in drawn.values()) == accepted
    counters = _items(twin, mid, "COLLAB")
    [count] = [int(i["strokes"]) for i in counters.values() if "strokes" in i]
    assert count == MAX_STROKES
    await _close(host_api, clients)


async def test_joins_of_one_guest_at_once_make_one_participant(twin: Twin) -> None:
    host_api, mid, clients = await _room(twin, people=1)
    key = new_guest_key()
    guests = [Api(twin.base_url) for _ in range(8)]  # a connection each
    responses = await asyncio.gather(
        *(
            g.post(f"/api/meetings/{mid}/join", {"display_name": f"Tab {n}", "guest_key": key})
            for n, g in enumerate(guests)
        )
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    grants = [r.json() for r in responses]
    assert len({g["participant_id"] for g in grants}) == 1
    assert len({g["session_id"] for g in grants}) == 1
    participants = _items(twin, mid, "P#")
    assert len(participants) == 2  # the host and this guest
    [guest] = [
        p for p in participants.values() if p["participant_id"] == grants[0]["participant_id"]
    ]
    assert guest["name"] in {f"Tab {n}" for n in range(8)}
    # Whichever grant is used, it is that one participant.
    client = await SignalingClient.enter(twin.ws_url, grants[-1])
    await client.ok("join")
    await asyncio.gather(*(g.close() for g in guests))
    await _close(host_api, [*clients, client])


async def test_first_joins_of_one_guest_at_once_start_one_session(twin: Twin) -> None:
    host_api = Api(twin.base_url)
    await host_api.sign_up(f"host-{uuid.uuid4().hex[:8]}@example.com", "Hana Host")
    mid = (await host_api.create_meeting(allow_before_host=True))["meeting_id"]
    key = new_guest_key()
    guests = [Api(twin.base_url) for _ in range(8)]
    responses = await asyncio.gather(
        *(
            g.post(f"/api/meetings/{mid}/join", {"display_name": "Gus", "guest_key": key})
            for g in guests
        )
    )
    ok = [r.json() for r in responses if r.status_code == 200]
    assert ok, [r.text for r in responses]
    for response in responses:  # "the meeting is starting; try again" at worst
        assert response.status_code in (200, 409), response.text
    assert len({(g["session_id"], g["participant_id"]) for g in ok}) == 1
    own = [i for i in twin.meeting_items(mid) if i["pk"] == f"M#{mid}"]
    assert len([i for i in own if i["sk"].startswith("SESSION#")]) == 1
    assert len(_items(twin, mid, "P#")) == 1
    await asyncio.gather(*(g.close() for g in guests))
    await host_api.close()


async def test_joins_sent_at_once_with_one_idempotency_key_get_one_answer(twin: Twin) -> None:
    host_api, mid, clients = await _room(twin, people=1)
    key, other_key = new_guest_key(), new_guest_key()
    idempotency = {"Idempotency-Key": f"join-{uuid.uuid4().hex}"}
    guests = [Api(twin.base_url) for _ in range(8)]
    body = {"display_name": "Gus", "guest_key": key}
    path = f"/api/meetings/{mid}/join"
    responses = await asyncio.gather(*(g.post(path, body, idempotency) for g in guests))
    answers = [r.json() for r in responses if r.status_code == 200]
    assert answers, [r.text for r in responses]
    for response in responses:  # the rest: still in progress, try again
        if response.status_code != 200:
            assert response.status_code == 409, response.text
            assert response.json()["error"]["code"] == "conflict", response.text
    assert all(a == answers[0] for a in answers), answers
    again = await guests[0].post(path, body, idempotency)
    assert again.status_code == 200 and again.json() == answers[0]
    # Another guest reusing the key is another person, with credentials of their own.
    other = await guests[1].post(path, {**body, "guest_key": other_key}, idempotency)
    assert other.status_code == 200
    assert other.json()["participant_id"] != answers[0]["participant_id"]
    assert other.json()["resume_token"] != answers[0]["resume_token"]
    participants = _items(twin, mid, "P#")
    assert len(participants) == 3  # the host, this guest once, the other guest
    await asyncio.gather(*(g.close() for g in guests))
    await _close(host_api, clients)
