"""The node's configuration, from the command line (`python -m media_fleet --help`)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_CAPACITY = 500
DEFAULT_DRAIN_DEADLINE_SECONDS = 600.0
DEFAULT_LIFECYCLE_HOOK = "townhall-media-drain"


@dataclass(frozen=True)
class NodeSettings:
    node_id: str
    control_host: str
    control_port: int
    # The address ICE candidates announce: on EC2 the public IP is not on any interface.
    announced_host: str | None
    # A JWKS URL (http/https) or a file path.
    jwks: str
    workers: int
    registry_table: str | None = None
    capacity: int = DEFAULT_CAPACITY
    asg_name: str | None = None
    lifecycle_hook: str = DEFAULT_LIFECYCLE_HOOK
    instance_id: str | None = None
    drain_deadline_seconds: float = DEFAULT_DRAIN_DEADLINE_SECONDS
    # Local addresses to gather ICE candidates on; empty means aioice's choice (every
    # non-loopback interface).
    ice_hosts: tuple[str, ...] = ()
    video_slots: int = 9
    audio_slots: int = 3
    # The host the control plane calls the front on (the registry's control_url); on EC2 the
    # public IP, which is not on any interface. None: the control host.
    control_advertise_host: str | None = None

    @property
    def advertised_control_host(self) -> str:
        return self.control_advertise_host or self.control_host

    @property
    def front_url(self) -> str:
        """The front's URL as registered: always https (see media_fleet/service/tls.py)."""
        return f"https://{self.advertised_control_host}:{self.control_port}"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m media_fleet", description="Townhall SFU media node")
    p.add_argument("--node-id", required=True, help="this node's id in the registry and tokens")
    p.add_argument("--control-host", default="127.0.0.1", help="address of the control API")
    p.add_argument("--control-port", type=int, required=True, help="port of the control API")
    p.add_argument(
        "--control-advertise-host",
        default=None,
        help="address the control plane calls the control API on (default: --control-host)",
    )
    p.add_argument("--announced-host", default=None, help="media address announced in ICE")
    p.add_argument("--jwks", required=True, help="JWKS URL (http/https) or file path")
    p.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="worker processes (one per core)"
    )
    p.add_argument("--registry-table", default=None, help="MediaNodes table: register there")
    p.add_argument("--capacity", type=int, default=DEFAULT_CAPACITY, help="most forwarded streams")
    p.add_argument("--asg-name", default=None, help="Auto Scaling group (metric dimension, hook)")
    p.add_argument("--lifecycle-hook", default=DEFAULT_LIFECYCLE_HOOK, help="termination hook")
    p.add_argument("--instance-id", default=None, help="EC2 instance id, for the lifecycle hook")
    p.add_argument(
        "--drain-deadline",
        type=float,
        default=DEFAULT_DRAIN_DEADLINE_SECONDS,
        help="seconds a drain waits for sessions to end",
    )
    p.add_argument(
        "--ice-host",
        action="append",
        default=[],
        help="gather ICE candidates on this local address only (repeatable; 127.0.0.1 locally)",
    )
    p.add_argument("--video-slots", type=int, default=9)
    p.add_argument("--audio-slots", type=int, default=3)
    return p


def parse(argv: Sequence[str] | None = None) -> NodeSettings:
    p = parser()
    args = p.parse_args(argv)
    if args.workers < 1:
        p.error("--workers must be at least 1")
    if args.capacity < 1:
        p.error("--capacity must be at least 1")
    if not 0 < args.control_port < 65536:
        p.error("--control-port must be a TCP port")
    return NodeSettings(
        node_id=args.node_id,
        control_host=args.control_host,
        control_port=args.control_port,
        announced_host=args.announced_host,
        jwks=args.jwks,
        workers=args.workers,
        registry_table=args.registry_table,
        capacity=args.capacity,
        asg_name=args.asg_name,
        lifecycle_hook=args.lifecycle_hook,
        instance_id=args.instance_id,
        drain_deadline_seconds=args.drain_deadline,
        ice_hosts=tuple(args.ice_host),
        video_slots=args.video_slots,
        audio_slots=args.audio_slots,
        control_advertise_host=args.control_advertise_host,
    )
