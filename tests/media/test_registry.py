"""A node's registry entry against a real DynamoDB API (moto's server in its own process):
written by the node (media_fleet.registry), read by the control plane (townhall.store's
MediaNodeTable under townhall.media's NodeDirectory), the item being the contract in
contracts.media_nodes."""

from typing import Any

import pytest

from contracts.media_nodes import MediaNode, is_live, ttl_for
from infra.twin.dynamodb import LocalDynamoDB
from media_fleet.registry import NodeRegistry, to_attributes
from townhall.media.nodes import NodeDirectory
from townhall.store import dynamo
from townhall.store.dynamo import StoreUnavailable
from townhall.store.media_nodes import MediaNodeTable

NOW = 1_800_000_000.0


@pytest.fixture
def table(db: LocalDynamoDB, client: Any) -> str:
    """The MediaNodes table, emptied: every test sees only its own nodes."""
    name = db.table_names["MEDIA_NODES_TABLE"]
    for item in client.scan(TableName=name, ProjectionExpression="node_id")["Items"]:
        client.delete_item(TableName=name, Key=item)
    return name


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def a_node(node_id: str = "node-a", capacity: int = 100) -> MediaNode:
    return MediaNode(
        node_id=node_id,
        address="198.51.100.7:40000",
        control_url="https://198.51.100.7:8700",
        capacity=capacity,
        region="eu-west-1",
        az="eu-west-1a",
        control_cert_sha256="ab" * 32,
    )


def raw_item(client: Any, table: str, node_id: str) -> dict[str, Any] | None:
    raw = client.get_item(
        TableName=table, Key=dynamo.to_ddb({"node_id": node_id}), ConsistentRead=True
    ).get("Item")
    return dynamo.from_ddb(raw) if raw else None


def test_register_writes_the_whole_item_with_a_ttl(client: Any, table: str) -> None:
    clock = Clock()
    registry = NodeRegistry(table, client, heartbeat_interval=5, clock=clock)
    registry.register(a_node())
    item = raw_item(client, table, "node-a")
    assert item is not None
    assert item["address"] == "198.51.100.7:40000"
    assert item["control_url"] == "https://198.51.100.7:8700"
    assert item["control_cert_sha256"] == "ab" * 32
    assert (item["capacity"], item["load"], item["state"]) == (100, 0, "active")
    assert (item["region"], item["az"]) == ("eu-west-1", "eu-west-1a")
    assert item["started_at"] == item["heartbeat_at"] == int(NOW)
    assert item["ttl"] == int(NOW) + 15  # three heartbeats

    directory = NodeDirectory(table, client, clock=clock)
    assert [n.node_id for n in directory.live()] == ["node-a"]
    assert directory.get("node-a") == MediaNode.from_item(item)
    assert directory.get("node-a").control_cert_sha256 == "ab" * 32  # type: ignore[union-attr]


def test_heartbeat_reports_load_and_pushes_the_ttl(client: Any, table: str) -> None:
    clock = Clock()
    registry = NodeRegistry(table, client, heartbeat_interval=5, clock=clock)
    registry.register(a_node())
    clock.now += 4
    assert registry.heartbeat(load=37, cpu=0.42) is True
    item = raw_item(client, table, "node-a")
    assert item is not None
    assert (item["load"], item["cpu"]) == (37, 0.42)
    assert item["heartbeat_at"] == int(NOW) + 4
    assert item["ttl"] == int(NOW) + 4 + 15
    assert item["started_at"] == int(NOW)


def test_a_node_whose_ttl_passed_is_ignored_until_it_heartbeats(client: Any, table: str) -> None:
    clock = Clock()
    registry = NodeRegistry(table, client, heartbeat_interval=5, clock=clock)
    registry.register(a_node())
    directory = NodeDirectory(table, client, clock=clock)

    clock.now += 16  # three heartbeats missed; the item is still in the table (moto keeps it)
    assert raw_item(client, table, "node-a") is not None
    assert directory.live() == []
    assert directory.get("node-a") is None
    assert directory.accepting() == []

    assert registry.heartbeat(load=1, cpu=0.1) is True
    assert [n.node_id for n in directory.live()] == ["node-a"]


def test_heartbeat_re_registers_a_reaped_node_in_its_current_state(client: Any, table: str) -> None:
    clock = Clock()
    registry = NodeRegistry(table, client, heartbeat_interval=5, clock=clock)
    registry.register(a_node())
    registry.drain()
    client.delete_item(TableName=table, Key=dynamo.to_ddb({"node_id": "node-a"}))

    assert registry.heartbeat(load=3, cpu=0.2) is False
    item = raw_item(client, table, "node-a")
    assert item is not None  # the whole item, not a fragment with only load and ttl
    assert item["address"] == "198.51.100.7:40000" and item["capacity"] == 100
    assert (item["load"], item["state"]) == (3, "draining")


def test_drain_keeps_the_node_live_but_out_of_placement(client: Any, table: str) -> None:
    registry = NodeRegistry(table, client)
    registry.register(a_node("node-a"))
    NodeRegistry(table, client).register(a_node("node-b"))
    registry.drain()

    assert (raw_item(client, table, "node-a") or {}).get("state") == "draining"
    directory = NodeDirectory(table, client)
    assert sorted(n.node_id for n in directory.live()) == ["node-a", "node-b"]
    assert [n.node_id for n in directory.accepting()] == ["node-b"]
    assert [n.node_id for n in directory.draining()] == ["node-a"]
    # A later heartbeat does not turn it active again.
    registry.heartbeat(load=0, cpu=0.0)
    assert [n.node_id for n in directory.draining()] == ["node-a"]


def test_deregister_removes_the_item_and_stops_the_registry(client: Any, table: str) -> None:
    registry = NodeRegistry(table, client)
    registry.register(a_node())
    registry.deregister()
    assert raw_item(client, table, "node-a") is None
    registry.deregister()  # twice is fine
    with pytest.raises(RuntimeError, match="not registered"):
        registry.heartbeat(load=0, cpu=0.0)


def test_heartbeat_replaces_reservations_with_the_nodes_own_count(client: Any, table: str) -> None:
    registry = NodeRegistry(table, client)
    registry.register(a_node(capacity=10))
    directory = NodeDirectory(table, client)
    node = directory.get("node-a")
    assert node is not None
    assert directory.reserve(node, 4) is not None
    assert directory.reserve(node, 4) is not None
    assert directory.reserve(node, 4) is None  # 8 + 4 > 10
    assert (directory.get("node-a") or node).load == 8
    registry.heartbeat(load=2, cpu=0.1)
    assert (directory.get("node-a") or node).load == 2
    directory.unreserve("node-a", 5)  # more than the load: left alone, never negative
    assert (directory.get("node-a") or node).load == 2


def test_a_node_needs_an_address_and_capacity() -> None:
    with pytest.raises(ValueError, match="capacity"):
        a_node(capacity=0)
    with pytest.raises(ValueError, match="address"):
        MediaNode(node_id="n", address="", control_url="http://x", capacity=1)


def test_a_malformed_item_does_not_hide_the_others(client: Any, table: str) -> None:
    NodeRegistry(table, client).register(a_node("node-a"))
    client.put_item(
        TableName=table,
        Item=dynamo.to_ddb({"node_id": "node-x", "state": "weird", "ttl": int(NOW) * 2}),
    )
    assert [n.node_id for n in NodeDirectory(table, client).live()] == ["node-a"]


def test_a_node_item_without_a_fingerprint_reads_as_none() -> None:
    item = {"node_id": "n", "address": "a", "control_url": "http://127.0.0.1:1", "capacity": 1}
    assert MediaNode.from_item(item).control_cert_sha256 is None
    # What the node writes leaves the absent fingerprint out (DynamoDB stores no null for it).
    assert "control_cert_sha256" not in to_attributes(MediaNode.from_item(item).to_item())


def test_the_ttl_rules_of_the_contract() -> None:
    assert ttl_for(NOW) == int(NOW) + 3  # three heartbeats of 1 s
    assert ttl_for(NOW, heartbeat_interval=5) == int(NOW) + 15
    # Rounded up: a node heartbeating at .9 of a second keeps its full three seconds.
    assert ttl_for(NOW + 0.9) == int(NOW) + 4
    assert is_live(None, NOW) and is_live(int(NOW) + 1, NOW)
    assert not is_live(int(NOW), NOW)  # the moment the ttl is reached, the node is dead
    node = a_node()
    assert not node.is_live(NOW)  # never heartbeat: ttl 0


def test_the_store_raises_its_own_error_never_a_client_error(client: Any) -> None:
    # A table that does not exist: DynamoDB answers ResourceNotFoundException (a ClientError).
    missing = NodeDirectory(MediaNodeTable("no-such-table", client))
    with pytest.raises(StoreUnavailable, match="reading the media node registry failed"):
        missing.live()
    with pytest.raises(StoreUnavailable, match="reading media node node-a failed"):
        missing.get("node-a")
    with pytest.raises(StoreUnavailable, match="reserving streams on media node node-a"):
        missing.reserve(a_node(), 1)
    with pytest.raises(StoreUnavailable, match="giving back streams on media node node-a"):
        missing.unreserve("node-a", 1)
