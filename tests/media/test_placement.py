"""Meeting placement against a real DynamoDB API (moto's server in its own process), and its
decisions over stores that a test substitutes through their Protocols."""

import dataclasses
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from contracts.media_nodes import MediaNode, NodeState, is_live
from infra.twin.dynamodb import LocalDynamoDB
from media_fleet.registry import NodeRegistry
from townhall.errors import Conflict
from townhall.media.nodes import MediaNodeRecords, NodeDirectory
from townhall.media.placement import (
    MeetingPlacement,
    NoMediaCapacity,
    Placement,
    PlacementRecords,
)
from townhall.store import dynamo
from townhall.store.dynamo import StoreUnavailable
from townhall.store.media_nodes import MediaNodeTable
from townhall.store.placement import PlacementTable


@pytest.fixture
def nodes_table(db: LocalDynamoDB, client: Any) -> str:
    """The MediaNodes table, emptied: placement scans it, so tests must not see each other's."""
    name = db.table_names["MEDIA_NODES_TABLE"]
    for item in client.scan(TableName=name, ProjectionExpression="node_id")["Items"]:
        client.delete_item(TableName=name, Key=item)
    return name


@pytest.fixture
def meetings_table(db: LocalDynamoDB) -> str:
    return db.table_names["MEETINGS_TABLE"]


@pytest.fixture
def directory(nodes_table: str, client: Any) -> NodeDirectory:
    return NodeDirectory(nodes_table, client)


@pytest.fixture
def placement(meetings_table: str, directory: NodeDirectory, client: Any) -> MeetingPlacement:
    return MeetingPlacement(meetings_table, directory, client)


@pytest.fixture
def meeting_id() -> str:
    return uuid.uuid4().hex[:12]


def start_node(
    nodes_table: str, client: Any, node_id: str, *, capacity: int = 100, load: int = 0
) -> NodeRegistry:
    registry = NodeRegistry(nodes_table, client)
    registry.register(
        MediaNode(
            node_id=node_id,
            address=f"127.0.0.1:{40000 + len(node_id)}",
            control_url=f"http://127.0.0.1:8700/{node_id}",
            capacity=capacity,
        )
    )
    if load:
        registry.heartbeat(load=load, cpu=load / capacity)
    return registry


def load_of(directory: NodeDirectory, node_id: str) -> int:
    node = directory.get(node_id)
    assert node is not None
    return node.load


def test_a_new_meeting_goes_to_the_least_utilized_node(
    nodes_table: str, client: Any, placement: MeetingPlacement, meeting_id: str
) -> None:
    start_node(nodes_table, client, "node-a", capacity=100, load=50)
    start_node(nodes_table, client, "node-b", capacity=100, load=20)
    # Fewer streams than node-b, but a larger share of a smaller node.
    start_node(nodes_table, client, "node-c", capacity=20, load=10)

    node = placement.place(meeting_id, streams_needed=3)
    assert node.node_id == "node-b"
    assert node.load == 23  # the streams are reserved on the node at once
    assert node.address and node.control_url
    current = placement.current(meeting_id)
    assert current is not None and current.node_id == "node-b" and current.placed_at > 0


def test_full_nodes_are_skipped(
    nodes_table: str, client: Any, placement: MeetingPlacement, meeting_id: str
) -> None:
    start_node(nodes_table, client, "node-a", capacity=100, load=100)
    start_node(nodes_table, client, "node-b", capacity=10, load=9)  # 90%: room for one only
    start_node(nodes_table, client, "node-c", capacity=100, load=95)
    assert placement.place(meeting_id, streams_needed=2).node_id == "node-c"


def test_a_placed_meeting_stays_on_its_node_while_it_has_room(
    nodes_table: str,
    client: Any,
    placement: MeetingPlacement,
    directory: NodeDirectory,
    meeting_id: str,
) -> None:
    start_node(nodes_table, client, "node-a", capacity=100, load=10)
    busy = start_node(nodes_table, client, "node-b", capacity=100, load=0)
    assert placement.place(meeting_id).node_id == "node-b"
    busy.heartbeat(load=80, cpu=0.8)  # now far busier than node-a, but not full

    for _ in range(3):
        assert placement.place(meeting_id).node_id == "node-b"
    assert load_of(directory, "node-b") == 83
    # Another meeting still goes to the least utilized node.
    assert placement.place(uuid.uuid4().hex).node_id == "node-a"


def test_a_meeting_moves_off_a_full_node(
    nodes_table: str, client: Any, placement: MeetingPlacement, meeting_id: str
) -> None:
    start_node(nodes_table, client, "node-a", capacity=100, load=50)
    first = start_node(nodes_table, client, "node-b", capacity=100, load=0)
    assert placement.place(meeting_id).node_id == "node-b"
    first.heartbeat(load=100, cpu=0.9)
    assert placement.place(meeting_id).node_id == "node-a"
    current = placement.current(meeting_id)
    assert current is not None and current.node_id == "node-a"


def test_draining_takes_no_new_meetings_and_moves_placed_ones(
    nodes_table: str,
    client: Any,
    placement: MeetingPlacement,
    directory: NodeDirectory,
    meeting_id: str,
) -> None:
    start_node(nodes_table, client, "node-a", capacity=100, load=60)
    leaving = start_node(nodes_table, client, "node-b", capacity=100, load=0)
    assert placement.place(meeting_id).node_id == "node-b"

    leaving.drain()
    # Every participant of the meeting who asks again (drain tells them to) lands on node-a,
    # and the placement follows so they all land together.
    assert placement.place(meeting_id).node_id == "node-a"
    assert placement.place(meeting_id).node_id == "node-a"
    current = placement.current(meeting_id)
    assert current is not None and current.node_id == "node-a"
    assert placement.place(uuid.uuid4().hex).node_id == "node-a"
    assert [n.node_id for n in directory.draining()] == ["node-b"]


def test_a_meeting_on_a_dead_node_is_placed_again(
    nodes_table: str,
    client: Any,
    placement: MeetingPlacement,
    meetings_table: str,
    meeting_id: str,
) -> None:
    start_node(nodes_table, client, "node-a")
    # A placement naming a node whose heartbeat stopped long ago (its item outlived its TTL).
    client.put_item(
        TableName=nodes_table,
        Item=dynamo.to_ddb(
            MediaNode(
                node_id="node-dead",
                address="127.0.0.1:1",
                control_url="http://x",
                capacity=100,
                ttl=1_000,
            ).to_item()
        ),
    )
    client.put_item(
        TableName=meetings_table,
        Item=dynamo.to_ddb(
            {"pk": f"M#{meeting_id}", "sk": "MEDIA", "node_id": "node-dead", "placed_at": 1}
        ),
    )
    assert placement.place(meeting_id).node_id == "node-a"


def test_no_node_with_room_is_a_clear_error(
    nodes_table: str, client: Any, placement: MeetingPlacement, meeting_id: str
) -> None:
    with pytest.raises(NoMediaCapacity, match="no media node has room"):
        placement.place(meeting_id)
    start_node(nodes_table, client, "node-a", capacity=10, load=10)
    start_node(nodes_table, client, "node-b").drain()
    with pytest.raises(NoMediaCapacity, match="no media node has room") as caught:
        placement.place(meeting_id)
    assert isinstance(caught.value, Conflict) and caught.value.code == "conflict"
    assert placement.current(meeting_id) is None


class OneNodeRecords:
    """The registry as one racing placement sees it: its scan shows a single node, so each
    racer picks another node and only the conditional write can make them agree. A stand-in
    for the store through its Protocol (`MediaNodeRecords`), over the real table."""

    def __init__(self, table: str, client: Any, node_id: str) -> None:
        self._table = MediaNodeTable(table, client)
        self._only = node_id

    def live(self, now: float) -> list[MediaNode]:
        return [n for n in self._table.live(now) if n.node_id == self._only]

    def get(self, node_id: str, now: float) -> MediaNode | None:
        return self._table.get(node_id, now)

    def add_load(self, node_id: str, streams: int, *, most: int, now: float) -> MediaNode | None:
        return self._table.add_load(node_id, streams, most=most, now=now)

    def remove_load(self, node_id: str, streams: int) -> None:
        self._table.remove_load(node_id, streams)

    def expire(self, node_id: str, heartbeat_at: int, now: float) -> bool:
        return self._table.expire(node_id, heartbeat_at, now)


def test_concurrent_placements_of_one_meeting_agree(
    nodes_table: str,
    meetings_table: str,
    client: Any,
    directory: NodeDirectory,
    meeting_id: str,
) -> None:
    racers = 6
    names = [f"node-{i}" for i in range(racers)]
    for name in names:
        start_node(nodes_table, client, name)
    start = threading.Barrier(racers, timeout=10)

    def place(name: str) -> str:
        placement = MeetingPlacement(
            meetings_table, NodeDirectory(OneNodeRecords(nodes_table, client, name)), client
        )
        start.wait()
        return placement.place(meeting_id).node_id

    with ThreadPoolExecutor(racers) as pool:
        chosen = list(pool.map(place, names, timeout=30))

    assert len(set(chosen)) == 1, chosen
    winner = chosen[0]
    current = MeetingPlacement(meetings_table, directory, client).current(meeting_id)
    assert current is not None and current.node_id == winner
    # Losers gave their reservations back and reserved on the winner instead.
    assert {name: load_of(directory, name) for name in names} == {
        name: racers if name == winner else 0 for name in names
    }


def test_a_placement_that_loses_the_write_follows_the_winner(
    monkeypatch: pytest.MonkeyPatch,
    nodes_table: str,
    meetings_table: str,
    client: Any,
    directory: NodeDirectory,
    meeting_id: str,
) -> None:
    start_node(nodes_table, client, "node-a")
    start_node(nodes_table, client, "node-b", load=5)
    winner = MeetingPlacement(
        meetings_table, NodeDirectory(OneNodeRecords(nodes_table, client, "node-b")), client
    )
    loser = MeetingPlacement(meetings_table, directory, client)

    # The loser's first read saw no placement; the winner's write lands right after it.
    real_current = loser.current
    reads = 0

    def stale_then_real(mid: str) -> Placement | None:
        nonlocal reads
        reads += 1
        if reads == 1:
            assert winner.place(mid).node_id == "node-b"
            return None
        return real_current(mid)

    monkeypatch.setattr(loser, "current", stale_then_real)
    assert loser.place(meeting_id).node_id == "node-b"
    assert reads == 2
    assert load_of(directory, "node-a") == 0  # its reservation on node-a was given back
    assert load_of(directory, "node-b") == 7


def test_release_forgets_the_placement_only_if_it_is_still_ours(
    nodes_table: str, client: Any, placement: MeetingPlacement, meeting_id: str
) -> None:
    start_node(nodes_table, client, "node-a")
    placement.place(meeting_id)
    assert placement.release(meeting_id, node_id="node-other") is False
    assert placement.current(meeting_id) is not None
    assert placement.release(meeting_id, node_id="node-a") is True
    assert placement.current(meeting_id) is None
    assert placement.release(meeting_id) is True  # idempotent without a node id


class NodesInMemory:
    """`MediaNodeRecords` in a dict: placement's decisions, with no DynamoDB at all."""

    def __init__(self, *nodes: MediaNode) -> None:
        self.nodes = {n.node_id: n for n in nodes}

    def live(self, now: float) -> list[MediaNode]:
        return [n for n in self.nodes.values() if n.is_live(now)]

    def get(self, node_id: str, now: float) -> MediaNode | None:
        node = self.nodes.get(node_id)
        return node if node is not None and node.is_live(now) else None

    def add_load(self, node_id: str, streams: int, *, most: int, now: float) -> MediaNode | None:
        node = self.get(node_id, now)
        if node is None or node.state != "active" or node.load > most:
            return None
        self.nodes[node_id] = dataclasses.replace(node, load=node.load + streams)
        return self.nodes[node_id]

    def remove_load(self, node_id: str, streams: int) -> None:
        node = self.nodes.get(node_id)
        if node is not None and node.load >= streams:
            self.nodes[node_id] = dataclasses.replace(node, load=node.load - streams)

    def expire(self, node_id: str, heartbeat_at: int, now: float) -> bool:
        node = self.nodes.get(node_id)
        if node is None or node.heartbeat_at != heartbeat_at or not is_live(node.ttl, now):
            return False
        self.nodes[node_id] = dataclasses.replace(node, ttl=int(now))
        return True


class PlacementsInMemory:
    """`PlacementRecords` in a dict, with the same conditions as the table."""

    def __init__(self) -> None:
        self.placements: dict[str, Placement] = {}

    def get(self, meeting_id: str) -> Placement | None:
        return self.placements.get(meeting_id)

    def put(self, placement: Placement, *, replacing: str | None) -> bool:
        current = self.placements.get(placement.meeting_id)
        if (current.node_id if current is not None else None) != replacing:
            return False
        self.placements[placement.meeting_id] = placement
        return True

    def delete(self, meeting_id: str, *, node_id: str | None = None) -> bool:
        current = self.placements.get(meeting_id)
        if node_id is not None and (current is None or current.node_id != node_id):
            return False
        self.placements.pop(meeting_id, None)
        return True


def test_placement_decides_over_any_store_that_keeps_the_protocols() -> None:
    now = 1_800_000_000.0

    def node(node_id: str, load: int, state: NodeState = "active") -> MediaNode:
        return MediaNode(
            node_id=node_id,
            address="192.0.2.1",
            control_url=f"https://192.0.2.1/{node_id}",
            capacity=10,
            load=load,
            state=state,
            ttl=int(now) + 15,
        )

    nodes = NodesInMemory(node("node-a", 6), node("node-b", 2))
    placements = PlacementsInMemory()
    # Typed as the Protocols: the stand-ins need no cast and no ignore.
    records: MediaNodeRecords = nodes
    stored: PlacementRecords = placements
    placement = MeetingPlacement(
        stored, NodeDirectory(records, clock=lambda: now), clock=lambda: now
    )

    assert placement.place("m-1", 3).node_id == "node-b"
    assert nodes.nodes["node-b"].load == 5
    assert placement.place("m-1", 3).node_id == "node-b"  # sticky while it has room
    assert placement.place("m-1", 3).node_id == "node-a"  # full now (8 + 3 > 10): moved
    assert placements.placements["m-1"].node_id == "node-a"
    nodes.nodes["node-a"] = dataclasses.replace(nodes.nodes["node-a"], state="draining")
    with pytest.raises(NoMediaCapacity):
        placement.place("m-1", 3)
    assert placement.release("m-1", node_id="node-b") is False
    assert placement.release("m-1") is True and placement.current("m-1") is None


def test_placement_storage_raises_its_own_error_never_a_client_error(client: Any) -> None:
    missing = PlacementTable("no-such-table", client)
    with pytest.raises(StoreUnavailable, match="reading the media placement of m-1 failed"):
        missing.get("m-1")
    with pytest.raises(StoreUnavailable, match="placing meeting m-1 failed"):
        missing.put(Placement("m-1", "node-a", 1), replacing=None)
    with pytest.raises(StoreUnavailable, match="releasing the media placement of m-1 failed"):
        missing.delete("m-1")
