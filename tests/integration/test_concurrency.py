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
from tests.integration.client import Api, SignalingClient
from tests.integration.conftest import Twin, _start

PEOPLE = 10


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv(moto_server.SWITCH_INTERVAL_VARIABLE, "0.00001")
        started = _start(tmp_path_factory, TwinOptions())
        running = next(started)
    yield running
    next(started, None)


async def _room(twin: Twin, people: int = PEOPLE) -> tuple[Api, str, list[SignalingClient]]:
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
