"""The node process: workers, the front, the registry entry, and the drain on SIGTERM.

start:  N workers (one per core) -> the front on --control-port -> register + heartbeat
SIGTERM (or SIGINT): drain -> registry `draining` -> workers told to drain (each tells its
        rooms' clients to move) -> wait until no sessions or the deadline -> complete the
        Auto Scaling lifecycle action (when configured) -> deregister -> exit 0
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import socket
import time
from collections.abc import Callable

from media_fleet.service.front import front_app
from media_fleet.service.http_server import ServedApp
from media_fleet.service.imds import TerminationWatcher, start_termination_watcher
from media_fleet.service.lifecycle_hook import complete_lifecycle_action
from media_fleet.service.registration import Registration
from media_fleet.service.settings import NodeSettings
from media_fleet.service.tls import generate
from media_fleet.service.workers import WorkerPool

log = logging.getLogger(__name__)

# How often the supervisor reads its workers' load: as often as the heartbeat reports it, and
# the drain watches sessions through it.
MONITOR_SECONDS = 1.0
# After the drain, workers have already exited or are closing their last rooms.
WORKER_EXIT_GRACE_SECONDS = 5.0


class Supervisor:
    def __init__(self, settings: NodeSettings) -> None:
        self.settings = settings
        self.pool = WorkerPool(settings)
        self.draining = False
        self._stop_requested = asyncio.Event()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop_requested.set)
        try:
            listener = socket.create_server(
                (self.settings.control_host, self.settings.control_port)
            )
        except OSError as exc:
            log.error("cannot listen on %s: %s", self.settings.front_url, exc)
            return 1
        try:
            await self.pool.start()
        except RuntimeError:
            log.exception("the workers did not start")
            listener.close()
            return 1
        # The front speaks TLS with a certificate made now; the registry publishes its
        # fingerprint, which the control plane pins. Workers stay plain HTTP on loopback.
        certificate = generate(
            self.settings.node_id,
            (self.settings.advertised_control_host, self.settings.control_host),
        )
        app = front_app(self.pool, self.settings.node_id, lambda: self.draining)
        front = ServedApp(app, listener, certificate.server_context())
        monitor = loop.create_task(self._monitor())
        registration: Registration | None = None
        watcher: TerminationWatcher | None = None
        try:
            await front.start()
            await self.pool.poll()
            if self.settings.registry_table:
                registration = Registration(
                    self.settings,
                    self.settings.registry_table,
                    self.pool.load,
                    control_cert_sha256=certificate.sha256,
                )
                await asyncio.to_thread(registration.start)
            # On EC2: the termination hook, seen in IMDS, starts the same drain as SIGTERM.
            watcher = start_termination_watcher(self.settings, loop, self._stop_requested.set)
            log.info(
                "node %s serving on %s (certificate sha256 %s) with %d workers",
                self.settings.node_id,
                self.settings.front_url,
                certificate.sha256,
                self.pool.size,
            )
            await self._stop_requested.wait()
            await self._drain(registration)
            return 0
        finally:
            if watcher is not None:
                watcher.stop()
            monitor.cancel()
            await self.pool.stop(WORKER_EXIT_GRACE_SECONDS)
            if registration is not None:
                registration.stop()
            front.stop()
            await front.wait_stopped()
            await app.state.http.aclose()

    async def _drain(self, registration: Registration | None) -> None:
        self.draining = True
        deadline = self.settings.drain_deadline_seconds
        log.info("node %s draining (deadline %.0f s)", self.settings.node_id, deadline)
        complete = lifecycle_completion(self.settings)
        if registration is not None:
            remaining = await registration.drain(
                self.pool.tell_to_drain, self._open_sessions, complete, deadline
            )
        else:
            self.pool.tell_to_drain()
            end = time.monotonic() + deadline
            while self._open_sessions() > 0 and time.monotonic() < end:  # noqa: ASYNC110
                await asyncio.sleep(MONITOR_SECONDS / 2)
            remaining = self.pool.sessions()
            if complete is not None:
                await asyncio.to_thread(complete)
        log.info("node %s drained (%d sessions left); stopping", self.settings.node_id, remaining)

    def _open_sessions(self) -> int:
        # A draining worker exits once its sessions are gone, so a live worker counts as at
        # least one: a health reading up to a second old must not end the drain early.
        live = [w for w in self.pool.workers if w.alive]
        return max(self.pool.sessions(), len(live))

    async def _monitor(self) -> None:
        while True:
            await asyncio.sleep(MONITOR_SECONDS)
            try:
                await self.pool.poll()
            except Exception:
                log.exception("reading the workers' load failed")


def lifecycle_completion(settings: NodeSettings) -> Callable[[], None] | None:
    """The call that lets Auto Scaling terminate the instance, when the node runs in a group
    with a termination hook; None elsewhere (a laptop, the twin)."""
    if not (settings.asg_name and settings.instance_id):
        return None
    return functools.partial(
        complete_lifecycle_action, settings.asg_name, settings.lifecycle_hook, settings.instance_id
    )
