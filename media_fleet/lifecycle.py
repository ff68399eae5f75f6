"""A media node's life: heartbeats while it serves, then a drain when it is told to stop.

Drain is what makes scale-in safe. On SIGTERM, or when Auto Scaling's termination hook fires,
the node marks itself draining (placement stops sending it meetings and moves the meetings it
hosts as their participants ask again), tells its clients to move, waits until its last session
ends or a deadline passes, completes the lifecycle action so the instance can go, and removes
its registry entry.

Everything that touches the outside (the registry, the clients, the lifecycle hook, the load
metric) comes in as a narrow callable or object, so the sequence is tested as it runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from media_fleet.registry import NodeRegistry

log = logging.getLogger(__name__)

DRAIN_DEADLINE_SECONDS = 600.0  # inside the termination hook's 15 minute heartbeat timeout
DRAIN_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class NodeLoad:
    forwarded_streams: int
    packets_per_second: float
    cpu: float  # this process's CPU use over the last interval, 0..1 of one core


class ProcessCpu:
    """CPU use of this process between two readings, from its own CPU time."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last_wall = clock()
        self._last_cpu = time.process_time()

    def read(self) -> float:
        wall, cpu = self._clock(), time.process_time()
        elapsed = wall - self._last_wall
        used = (cpu - self._last_cpu) / elapsed if elapsed > 0 else 0.0
        self._last_wall, self._last_cpu = wall, cpu
        return max(0.0, min(1.0, used))


LoadReporter = Callable[[NodeLoad], None]


class NodeLifecycle:
    def __init__(
        self,
        registry: NodeRegistry,
        measure: Callable[[], NodeLoad],
        report: LoadReporter | None = None,
    ) -> None:
        self._registry = registry
        self._measure = measure
        self._report = report
        self._stopping = asyncio.Event()

    @property
    def draining(self) -> bool:
        return self._stopping.is_set()

    async def heartbeat_forever(self) -> None:
        """Report load every heartbeat interval until a drain starts. A failed heartbeat is
        logged and retried on the next tick: the TTL gives three intervals of grace."""
        interval = self._registry.heartbeat_interval
        while not self._stopping.is_set():
            # In a thread: the write may take its retries' time, and the front's event loop
            # (control API, drain) must not wait for it once a second.
            await asyncio.to_thread(self.heartbeat_once)
            try:
                await asyncio.wait_for(self._stopping.wait(), interval)
            except TimeoutError:
                continue

    def heartbeat_once(self) -> NodeLoad:
        load = self._measure()
        try:
            self._registry.heartbeat(load.forwarded_streams, load.cpu)
        except Exception:
            log.exception("heartbeat failed; retrying next interval")
        if self._report is not None:
            try:
                self._report(load)
            except Exception:
                log.exception("load metric not published")
        return load

    async def drain(
        self,
        tell_clients_to_move: Callable[[], Awaitable[None]],
        sessions: Callable[[], int],
        complete_lifecycle_action: Callable[[], Awaitable[None]] | None = None,
        deadline_seconds: float = DRAIN_DEADLINE_SECONDS,
    ) -> int:
        """Drain and leave; returns the sessions still open at the deadline (0 when clean)."""
        self._stopping.set()
        self._registry.drain()
        await tell_clients_to_move()
        deadline = time.monotonic() + deadline_seconds
        # Polled: sessions end inside the forwarding core, which owes this module no callback.
        while sessions() > 0 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(min(DRAIN_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        remaining = sessions()
        if remaining:
            log.warning("drain deadline passed with %d sessions open", remaining)
        if complete_lifecycle_action is not None:
            await complete_lifecycle_action()
        self._registry.deregister()
        return remaining
