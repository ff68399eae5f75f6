"""The load a node publishes for Auto Scaling to track: `Townhall/Media NodeLoad`, the node's
forwarded streams as a percentage of its capacity, per Auto Scaling group (the dimension the
target-tracking policy in infra/stacks/media.py reads).

Written as a CloudWatch embedded-metric-format (EMF) log line, which the CloudWatch agent on the
instance turns into a metric without an API call per heartbeat, and which is readable on a
laptop.
"""

from __future__ import annotations

import json
import sys
from typing import IO

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from media_fleet.lifecycle import NodeLoad

NAMESPACE = "Townhall/Media"
METRIC = "NodeLoad"


def load_percent(load: NodeLoad, capacity: int) -> float:
    return round(100.0 * load.forwarded_streams / capacity, 2) if capacity > 0 else 100.0


def emf_line(load: NodeLoad, capacity: int, group: str, node_id: str) -> str:
    """One EMF record, built with Powertools' metrics utility (the same format the Lambdas use)."""
    metrics = Metrics(namespace=NAMESPACE)
    metrics.add_dimension(name="AutoScalingGroupName", value=group)
    metrics.add_metric(name=METRIC, unit=MetricUnit.Percent, value=load_percent(load, capacity))
    metrics.add_metric(name="ForwardedStreams", unit=MetricUnit.Count, value=load.forwarded_streams)
    metrics.add_metric(
        name="PacketsPerSecond",
        unit=MetricUnit.CountPerSecond,
        value=round(load.packets_per_second, 1),
    )
    metrics.add_metric(name="Cpu", unit=MetricUnit.Percent, value=round(100.0 * load.cpu, 1))
    metrics.add_metadata(key="node_id", value=node_id)
    try:
        return json.dumps(metrics.serialize_metric_set(), separators=(",", ":"))
    finally:
        metrics.clear_metrics()


class EmfLoadReporter:
    def __init__(self, capacity: int, group: str, node_id: str, out: IO[str] = sys.stdout) -> None:
        self._capacity = capacity
        self._group = group
        self._node_id = node_id
        self._out = out

    def __call__(self, load: NodeLoad) -> None:
        line = emf_line(load, self._capacity, self._group, self._node_id)
        self._out.write(line + "\n")
        self._out.flush()
