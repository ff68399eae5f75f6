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
import time
from typing import IO

from media_fleet.lifecycle import NodeLoad

NAMESPACE = "Townhall/Media"
METRIC = "NodeLoad"


def load_percent(load: NodeLoad, capacity: int) -> float:
    return round(100.0 * load.forwarded_streams / capacity, 2) if capacity > 0 else 100.0


def emf_line(load: NodeLoad, capacity: int, group: str, node_id: str, now_ms: int) -> str:
    return json.dumps(
        {
            "_aws": {
                "Timestamp": now_ms,
                "CloudWatchMetrics": [
                    {
                        "Namespace": NAMESPACE,
                        "Dimensions": [["AutoScalingGroupName"]],
                        "Metrics": [
                            {"Name": METRIC, "Unit": "Percent"},
                            {"Name": "ForwardedStreams", "Unit": "Count"},
                            {"Name": "PacketsPerSecond", "Unit": "Count/Second"},
                            {"Name": "Cpu", "Unit": "Percent"},
                        ],
                    }
                ],
            },
            "AutoScalingGroupName": group,
            "node_id": node_id,
            METRIC: load_percent(load, capacity),
            "ForwardedStreams": load.forwarded_streams,
            "PacketsPerSecond": round(load.packets_per_second, 1),
            "Cpu": round(100.0 * load.cpu, 1),
        },
        separators=(",", ":"),
    )


class EmfLoadReporter:
    def __init__(self, capacity: int, group: str, node_id: str, out: IO[str] = sys.stdout) -> None:
        self._capacity = capacity
        self._group = group
        self._node_id = node_id
        self._out = out

    def __call__(self, load: NodeLoad) -> None:
        line = emf_line(load, self._capacity, self._group, self._node_id, int(time.time() * 1000))
        self._out.write(line + "\n")
        self._out.flush()
