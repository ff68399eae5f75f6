"""A lost media node, as signaling finds it: the next media request of the meeting, or a page's
report that its media stalled (`media_stalled`), declares it lost and places the meeting on
another node at once (not after the node's registry `ttl`), and the room is told to move; a
node that is only paused keeps its meetings. Bad stall reports are refused with nothing changed.

SFU nodes behind the twin; aiortc participants (tests/integration/test_media_through_twin)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from infra.twin.server import TwinOptions
from tests.integration.client import Api, SignalingClient, refusal
from tests.integration.conftest import Twin, _start
from tests.integration.test_media_through_twin import MediaClient, loopback_ice  # noqa: F401


@pytest.fixture(scope="module")
def nodes_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    """Four nodes: two tests each kill one, one stalls one for good, and every test needs one
    left to move to."""
    yield from _start(tmp_path_factory, TwinOptions(media_nodes=4))


def _placed_on(twin: Twin, meeting_id: str) -> str:
    (item,) = [i for i in twin.meeting_items(meeting_id) if i["sk"] == "MEDIA"]
    return str(item["node_id"])


def _raw_ttl(twin: Twin, node_id: str) -> int:
    """The node's registry `ttl` as stored, live or not."""
    client = twin.local.dynamodb_client()
    item = client.get_item(
        TableName=twin.local.table_names["MEDIA_NODES_TABLE"],
        Key={"node_id": {"S": node_id}},
        ConsistentRead=True,
    )["Item"]
    return int(item["ttl"]["N"])


def _registry(twin: Twin) -> dict[str, dict[str, Any]]:
    from townhall.store.media_nodes import MediaNodeTable

    table = MediaNodeTable(twin.local.dynamodb.table_names["MEDIA_NODES_TABLE"])
    return {
        n.node_id: {"ttl": n.ttl, "heartbeat_at": n.heartbeat_at} for n in table.live(time.time())
    }


async def _people(twin: Twin, *names: str) -> tuple[Api, str, list[SignalingClient]]:
    host = Api(twin.base_url)
    await host.sign_up(f"failover-{uuid.uuid4().hex[:6]}@example.com")
    mid = (await host.create_meeting(title="Failover"))["meeting_id"]
    clients: list[SignalingClient] = []
    for name in names:
        api = host if not clients else Api(twin.base_url)
        client = await SignalingClient.enter(twin.ws_url, await api.join(mid, name))
        await client.ok("join")
        clients.append(client)
    return host, mid, clients


async def test_a_killed_node_is_replaced_by_the_next_request_and_the_room_told(
    nodes_twin: Twin,
) -> None:
    twin = nodes_twin
    host, mid, (ada_signaling, bob_signaling) = await _people(twin, "Ada", "Bob")
    ada = MediaClient(ada_signaling)
    bob: MediaClient | None = None
    try:
        await asyncio.wait_for(ada.start(), 30)
        first = _placed_on(twin, mid)
        (lost,) = [n for n in twin.local.media_nodes if n.node_id == first]
        ttl = _registry(twin)[first]["ttl"]
        lost.kill()  # SIGKILL: its registry item would stay live until `ttl`

        started = time.monotonic()
        bob = MediaClient(bob_signaling)
        await asyncio.wait_for(bob.start(), 30)  # each request answered on its first try
        print(f"\nnegotiated on another node {time.monotonic() - started:.1f} s after the kill")
        second = _placed_on(twin, mid)
        assert second != first
        # Declared lost (its ttl cut short), not waited out.
        assert _raw_ttl(twin, first) < ttl
        assert first not in _registry(twin)
        # Ada is told to move, by Bob's request that found the node lost.
        moved = await ada_signaling.wait_event("media.moved")
        assert moved["data"] == {
            "room_id": "",
            "lost_node": first,
            "by": bob_signaling.participant_id,
        }
    finally:
        for client in (ada, bob):
            if client is not None:
                await client.close()
        await host.close()


async def test_a_paused_node_is_slow_not_lost(nodes_twin: Twin) -> None:
    twin = nodes_twin
    live = [n for n in twin.local.media_nodes if n.running()]
    host, mid, (ada_signaling,) = await _people(twin, "Ada")
    ada = MediaClient(ada_signaling)
    try:
        await asyncio.wait_for(ada.start(), 30)
        node_id = _placed_on(twin, mid)
        (node,) = [n for n in live if n.node_id == node_id]
        node.pause()  # SIGSTOP: connections are accepted by the kernel, nothing answers
        try:
            request = asyncio.ensure_future(ada_signaling.request("media_subscribe"))
            await asyncio.sleep(1.0)
        finally:
            node.resume()
        reply = await asyncio.wait_for(request, 15)
        assert reply["type"] == "reply", reply  # answered late, on the same node
        assert _placed_on(twin, mid) == node_id
        assert node_id in _registry(twin)
        assert not ada_signaling.events_named("media.moved")
    finally:
        await ada.close()
        await host.close()


async def test_a_stall_report_finds_a_killed_node_and_moves_the_room(nodes_twin: Twin) -> None:
    twin = nodes_twin
    host, mid, (ada_signaling, bob_signaling) = await _people(twin, "Ada", "Bob")
    ada, bob = MediaClient(ada_signaling), MediaClient(bob_signaling)
    try:
        await asyncio.wait_for(asyncio.gather(ada.start(), bob.start()), 30)
        first = _placed_on(twin, mid)
        (lost,) = [n for n in twin.local.media_nodes if n.node_id == first and n.running()]
        lost.kill()
        # Ada's page saw no bytes for a while: it reports the node its replies named.
        assert await ada_signaling.ok("media_stalled", {"node_id": first}) == {"moved": True}
        assert first not in _registry(twin)
        moved = await bob_signaling.wait_event("media.moved")
        assert moved["data"] == {
            "room_id": "",
            "lost_node": first,
            "by": ada_signaling.participant_id,
        }
        # Bob's page reports too: he moves, and the room is not told a second time.
        assert await bob_signaling.ok("media_stalled", {"node_id": first}) == {"moved": True}
        await asyncio.sleep(0.5)
        assert len(bob_signaling.events_named("media.moved")) == 1
        # Bob renegotiates: the meeting goes to a live node, which the reply names.
        offer = await bob_signaling.ok("media_subscribe")
        assert offer["sdp"].startswith("v=0")
        assert offer["node_id"] == _placed_on(twin, mid) != first
    finally:
        for client in (ada, bob):
            await client.close()
        await host.close()


async def test_a_stall_report_on_a_paused_node_moves_nobody(nodes_twin: Twin) -> None:
    twin = nodes_twin
    host, mid, (ada_signaling,) = await _people(twin, "Ada")
    ada = MediaClient(ada_signaling)
    try:
        await asyncio.wait_for(ada.start(), 30)
        node_id = _placed_on(twin, mid)
        (node,) = [n for n in twin.local.media_nodes if n.node_id == node_id and n.running()]
        node.pause()
        try:
            report = asyncio.ensure_future(ada_signaling.ok("media_stalled", {"node_id": node_id}))
            await asyncio.sleep(1.0)
        finally:
            node.resume()
        # Slow, not lost: one unanswered probe while the heartbeat is fresh moves nobody.
        assert await asyncio.wait_for(report, 15) == {"moved": False}
        assert _placed_on(twin, mid) == node_id
        assert node_id in _registry(twin)
        assert not ada_signaling.events_named("media.moved")
    finally:
        await ada.close()
        await host.close()


async def test_a_node_stalled_for_good_is_found_once_its_heartbeat_stops(nodes_twin: Twin) -> None:
    """SIGSTOP with no SIGCONT: the first reports find it only slow (its heartbeat is fresh);
    once three heartbeats are missed a report finds it out of placement, and the request that
    places the room anew tells the room."""
    twin = nodes_twin
    host, mid, (ada_signaling, bob_signaling) = await _people(twin, "Ada", "Bob")
    ada = MediaClient(ada_signaling)
    try:
        await asyncio.wait_for(ada.start(), 30)
        node_id = _placed_on(twin, mid)
        (node,) = [n for n in twin.local.media_nodes if n.node_id == node_id and n.running()]
        node.pause()
        stopped = time.monotonic()
        try:
            report = {"node_id": node_id}
            assert await ada_signaling.ok("media_stalled", report) == {"moved": False}
            verdicts = [False]
            while not verdicts[-1] and time.monotonic() - stopped < 10:  # bounded: ~4 s
                verdicts.append((await ada_signaling.ok("media_stalled", report))["moved"])
            found_after = time.monotonic() - stopped
            print(f"\nstalled node found lost {found_after:.1f} s after it stopped")
            assert verdicts[-1] is True, verdicts
            # Ada renegotiates: her request places the room anew and tells the room, once.
            offer = await ada_signaling.ok("media_subscribe")
            assert offer["node_id"] != node_id
        finally:
            node.resume()  # it heartbeats again and is back in placement
        moved = await bob_signaling.wait_event("media.moved")
        assert moved["data"] == {
            "room_id": "",
            "lost_node": node_id,
            "by": ada_signaling.participant_id,
        }
        assert len(bob_signaling.events_named("media.moved")) == 1
    finally:
        await ada.close()
        await host.close()


async def test_bad_stall_reports_are_refused_and_change_nothing(nodes_twin: Twin) -> None:
    twin = nodes_twin
    host, mid, (ada_signaling, bob_signaling) = await _people(twin, "Ada", "Bob")
    ada = MediaClient(ada_signaling)
    try:
        await asyncio.wait_for(ada.start(), 30)
        node_id = _placed_on(twin, mid)
        registry = _registry(twin)
        before = twin.meeting_items(mid)
        for data in (
            {},
            {"node_id": None},
            {"node_id": 7},
            {"node_id": ["x"]},
            {"node_id": ""},
            {"node_id": "n" * 65},
            {"node_id": "../admin"},
            {"node_id": "node\u0000"},
            {"node_id": node_id, "extra": True},
        ):
            assert await refusal(ada_signaling, "media_stalled", data) == "invalid_input", data
        # A node the meeting is not on (or no node at all): the caller alone renegotiates;
        # nobody else is told, and no node is touched.
        for other in ("no-such-node", *(n for n in registry if n != node_id)):
            assert await ada_signaling.ok("media_stalled", {"node_id": other}) == {"moved": True}
        # A replay of a request id is refused.
        first = await ada_signaling.request("media_stalled", {"node_id": node_id}, request_id="r1")
        assert first["type"] == "reply", first
        again = await ada_signaling.request("media_stalled", {"node_id": node_id}, request_id="r1")
        assert again["type"] == "error" and again["error"]["code"] == "duplicate_request", again
        await asyncio.sleep(0.5)  # anything announced would have been delivered by now
        assert not bob_signaling.events_named("media.moved")
        assert _registry(twin).keys() == registry.keys()
        assert _placed_on(twin, mid) == node_id
        # Only the request ids of the accepted reports were recorded (`R#{participant}#{id}`).
        changed = [i for i in twin.meeting_items(mid) if i not in before]
        assert changed and all(i["sk"].startswith("R#") for i in changed), changed
    finally:
        await ada.close()
        await host.close()
