"""The node's registry entry and drain sequence, on a thread of their own.

`NodeRegistry` and `NodeLifecycle` call DynamoDB with blocking boto3 calls (a throttled or
unreachable endpoint can hold one for seconds). The supervisor's loop serves the front, so the
registry work runs on its own thread with its own event loop: a slow heartbeat never delays
an SDP exchange. What crosses threads is small: the workers' last health readings (read-only)
and process signals.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future

from contracts.media_nodes import MediaNode
from media_fleet.lifecycle import NodeLifecycle, NodeLoad
from media_fleet.load_metric import EmfLoadReporter
from media_fleet.registry import NodeRegistry
from media_fleet.service.settings import NodeSettings

log = logging.getLogger(__name__)

JOIN_TIMEOUT_SECONDS = 10.0
LOCAL_GROUP = "local"  # the metric's AutoScalingGroupName when the node runs outside a group


class Registration:
    def __init__(
        self,
        settings: NodeSettings,
        table: str,
        measure: Callable[[], NodeLoad],
        registry: NodeRegistry | None = None,
        *,
        control_cert_sha256: str | None = None,
    ) -> None:
        self._settings = settings
        self._control_cert_sha256 = control_cert_sha256
        self.registry = registry or NodeRegistry(table)
        self.lifecycle = NodeLifecycle(
            self.registry,
            measure=measure,
            report=EmfLoadReporter(
                settings.capacity, settings.asg_name or LOCAL_GROUP, settings.node_id
            ),
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="node-registry", daemon=True
        )
        self._heartbeats: Future[None] | None = None

    def node(self) -> MediaNode:
        s = self._settings
        return MediaNode(
            node_id=s.node_id,
            # aiortc has no port range option: the host is what ICE candidates announce, and
            # the ports are whatever each session binds.
            address=s.announced_host or s.control_host,
            control_url=s.front_url,
            # The control plane pins the front's self-signed certificate by this fingerprint.
            control_cert_sha256=self._control_cert_sha256,
            capacity=s.capacity,
        )

    def start(self) -> None:
        """Register (blocking: a node that cannot register must not serve), then heartbeat."""
        self.registry.register(self.node())
        self._thread.start()
        self._heartbeats = asyncio.run_coroutine_threadsafe(
            self.lifecycle.heartbeat_forever(), self._loop
        )

    async def drain(
        self,
        tell_clients_to_move: Callable[[], None],
        sessions: Callable[[], int],
        complete_lifecycle_action: Callable[[], None] | None,
        deadline_seconds: float,
    ) -> int:
        """NodeLifecycle.drain on the registry thread; returns the sessions left open."""

        async def tell() -> None:
            tell_clients_to_move()

        complete: Callable[[], Awaitable[None]] | None = None
        if complete_lifecycle_action is not None:
            action = complete_lifecycle_action

            async def complete_on_thread() -> None:
                await asyncio.to_thread(action)

            complete = complete_on_thread

        draining = asyncio.run_coroutine_threadsafe(
            self.lifecycle.drain(tell, sessions, complete, deadline_seconds), self._loop
        )
        return await asyncio.wrap_future(draining)

    def stop(self) -> None:
        if self._heartbeats is not None:
            self._heartbeats.cancel()
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(JOIN_TIMEOUT_SECONDS)
        if not self._thread.is_alive():
            self._loop.close()
