"""A node's heartbeats and drain, against a real DynamoDB API (moto's server in its own process),
with the node's load metric written as CloudWatch EMF."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest

from contracts.media_nodes import MediaNode
from infra.twin.dynamodb import LocalDynamoDB
from media_fleet.lifecycle import NodeLifecycle, NodeLoad, ProcessCpu
from media_fleet.load_metric import EmfLoadReporter, load_percent
from media_fleet.registry import NodeRegistry
from townhall.media.nodes import NodeDirectory


def _node(node_id: str) -> MediaNode:
    return MediaNode(
        node_id=node_id,
        address="127.0.0.1:40000",
        control_url="http://127.0.0.1:8700",
        capacity=200,
    )


async def test_heartbeats_report_load_until_drain_then_the_node_leaves(
    db: LocalDynamoDB, client: Any
) -> None:
    table = db.table_names["MEDIA_NODES_TABLE"]
    # Whole seconds: the registry's TTL is an integer number of seconds.
    registry = NodeRegistry(table, client, heartbeat_interval=1.0)
    registry.register(_node("node-drain"))
    directory = NodeDirectory(table, client)
    sessions = {"open": 3}
    loads = iter(range(10, 10_000, 10))
    metrics = io.StringIO()
    lifecycle = NodeLifecycle(
        registry,
        measure=lambda: NodeLoad(next(loads), 1500.0, 0.25),
        report=EmfLoadReporter(200, "Townhall-Media-Nodes", "node-drain", metrics),
    )
    beating = asyncio.create_task(lifecycle.heartbeat_forever())
    await asyncio.sleep(1.3)  # two heartbeats
    node = directory.get("node-drain")
    assert node is not None and node.load >= 20 and node.state == "active"
    assert node.cpu == pytest.approx(0.25)

    told: list[str] = []

    async def tell_clients() -> None:
        told.append("move")
        assert directory.get("node-drain").state == "draining"  # type: ignore[union-attr]

        async def leave() -> None:  # clients go one by one
            for _ in range(3):
                await asyncio.sleep(0.05)
                sessions["open"] -= 1

        asyncio.get_running_loop().create_task(leave())

    completed: list[str] = []

    async def complete() -> None:
        completed.append("CONTINUE")

    left = await asyncio.wait_for(
        lifecycle.drain(tell_clients, lambda: sessions["open"], complete, deadline_seconds=5), 10
    )
    await asyncio.wait_for(beating, 2)  # heartbeats stop once draining
    assert (left, told, completed) == (0, ["move"], ["CONTINUE"])
    assert directory.get("node-drain") is None
    assert not [n for n in directory.accepting(1) if n.node_id == "node-drain"]

    lines = [json.loads(line) for line in metrics.getvalue().splitlines()]
    assert lines, "no load metric was published"
    first = lines[0]
    assert first["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Townhall/Media"
    assert first["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["AutoScalingGroupName"]]
    assert first["AutoScalingGroupName"] == "Townhall-Media-Nodes"
    assert first["NodeLoad"] == [load_percent(NodeLoad(10, 0, 0), 200)] == [5.0]
    assert first["node_id"] == "node-drain"


async def test_drain_gives_up_at_the_deadline_and_still_completes(
    db: LocalDynamoDB, client: Any
) -> None:
    table = db.table_names["MEDIA_NODES_TABLE"]
    registry = NodeRegistry(table, client)
    registry.register(_node("node-stuck"))
    lifecycle = NodeLifecycle(registry, measure=lambda: NodeLoad(0, 0.0, 0.0))
    completed: list[bool] = []

    async def nothing() -> None:
        return None

    async def complete() -> None:
        completed.append(True)

    left = await asyncio.wait_for(
        lifecycle.drain(nothing, lambda: 2, complete, deadline_seconds=0.3), 5
    )
    assert left == 2 and completed == [True]
    assert NodeDirectory(table, client).get("node-stuck") is None


def test_process_cpu_is_a_fraction_of_one_core() -> None:
    cpu = ProcessCpu()
    sum(i * i for i in range(200_000))
    assert 0.0 < cpu.read() <= 1.0
