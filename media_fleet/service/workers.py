"""The supervisor's worker processes: start them, route to them, read their load, drain them.

Why processes: an asyncio loop runs on one core, and forwarding is CPU-bound Python (about
9 µs per forwarded packet), so a node uses its cores with one worker process per core, each
with its own loop. A meeting lives entirely on one worker (`routing.worker_for`): its
forwarding needs every publisher and subscriber in one process, until cascading exists.

A worker that dies unexpectedly is started again on the same index, so its meetings come back
to the same place once their clients ask signaling again (their sessions died with it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

import httpx

from media_fleet.lifecycle import NodeLoad
from media_fleet.service.routing import worker_for
from media_fleet.service.settings import NodeSettings

log = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 30.0
HEALTH_TIMEOUT_SECONDS = 2.0
STOP_TIMEOUT_SECONDS = 5.0


@dataclass
class WorkerProcess:
    index: int
    process: asyncio.subprocess.Process
    port: int
    # The worker's last answer to /v1/health; None until one arrives, or once it has exited.
    health: dict[str, Any] | None = None
    chores: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process.returncode is None


class WorkerPool:
    def __init__(self, settings: NodeSettings, python: str = sys.executable) -> None:
        self._settings = settings
        self._python = python
        self.workers: list[WorkerProcess] = []
        self.draining = False
        self._restarting: set[int] = set()
        self._client = httpx.AsyncClient(timeout=HEALTH_TIMEOUT_SECONDS, trust_env=False)

    @property
    def size(self) -> int:
        return self._settings.workers

    async def start(self) -> None:
        """Start every worker; if any fails, stop the ones that started and raise."""
        results = await asyncio.gather(
            *(self._spawn(i) for i in range(self.size)), return_exceptions=True
        )
        self.workers = [r for r in results if isinstance(r, WorkerProcess)]
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await self.stop()
            raise failures[0]

    def for_meeting(self, meeting_id: str | None) -> WorkerProcess:
        """The worker owning a meeting; requests naming none go to worker 0, which refuses."""
        index = 0 if meeting_id is None else worker_for(meeting_id, self.size)
        return self.workers[index]

    # -- load -----------------------------------------------------------------------------

    async def poll(self) -> None:
        """Ask every worker for its health (in parallel, bounded); restart dead ones."""
        await asyncio.gather(*(self._poll_one(w) for w in self.workers))

    async def _poll_one(self, worker: WorkerProcess) -> None:
        if not worker.alive:
            worker.health = None
            if not self.draining and worker.index not in self._restarting:
                log.error(
                    "worker %d exited with %s; restarting", worker.index, worker.process.returncode
                )
                await self._restart(worker.index)
            return
        try:
            response = await self._client.get(f"{worker.url}/v1/health")
            worker.health = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            worker.health = None  # a busy worker misses one reading; the next one counts

    def sessions(self) -> int:
        return sum(int(w.health.get("sessions", 0)) for w in self.workers if w.health and w.alive)

    def load(self) -> NodeLoad:
        """The node's load: streams and packets summed over workers; CPU as the mean over
        workers, so 1.0 means every core of the node is busy."""
        readings = [w.health for w in self.workers if w.health and w.alive]
        return NodeLoad(
            forwarded_streams=sum(int(h.get("forwarded_streams", 0)) for h in readings),
            packets_per_second=sum(float(h.get("packets_per_second", 0.0)) for h in readings),
            cpu=sum(float(h.get("cpu", 0.0)) for h in readings) / max(1, self.size),
        )

    # -- stopping -------------------------------------------------------------------------

    def tell_to_drain(self) -> None:
        """SIGTERM every worker: each refuses new sessions, tells its rooms' clients to move,
        and exits when its sessions end or its deadline passes. Safe from any thread."""
        self.draining = True
        for worker in self.workers:
            if worker.alive:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(signal.SIGTERM)

    async def stop(self, grace_seconds: float = STOP_TIMEOUT_SECONDS) -> None:
        """Wait up to `grace_seconds` in all for the workers to exit (SIGTERM is sent to any
        not yet told), then kill the rest."""
        self.tell_to_drain()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_seconds
        for worker in self.workers:
            try:
                await asyncio.wait_for(worker.process.wait(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                log.warning("worker %d did not exit in time; killing it", worker.index)
                with contextlib.suppress(ProcessLookupError):
                    worker.process.kill()
                await worker.process.wait()
            for chore in worker.chores:
                chore.cancel()
        await self._client.aclose()

    # -- processes ------------------------------------------------------------------------

    def _command(self, index: int) -> list[str]:
        s = self._settings
        command = [
            self._python, "-m", "media_fleet.service.worker",
            "--node-id", s.node_id,
            "--worker", str(index),
            "--jwks", s.jwks,
            "--video-slots", str(s.video_slots),
            "--audio-slots", str(s.audio_slots),
            "--drain-deadline", str(s.drain_deadline_seconds),
            "--parent-pid", str(os.getpid()),
        ]  # fmt: skip
        if s.announced_host:
            command += ["--announced-host", s.announced_host]
        for host in s.ice_hosts:
            command += ["--ice-host", host]
        return command

    async def _spawn(self, index: int) -> WorkerProcess:
        process = await asyncio.create_subprocess_exec(
            *self._command(index),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), READY_TIMEOUT_SECONDS)
            port = int(json.loads(line)["port"])
        except (TimeoutError, ValueError, KeyError, TypeError) as exc:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise RuntimeError(f"worker {index} did not start (exit {process.returncode})") from exc
        worker = WorkerProcess(index, process, port)
        # Keep reading its stdout, so a stray print can never fill the pipe and stall it.
        worker.chores.append(asyncio.get_running_loop().create_task(_drain_pipe(process.stdout)))
        log.info("worker %d serving on %s (pid %d)", index, worker.url, process.pid)
        return worker

    async def _restart(self, index: int) -> None:
        old = self.workers[index]
        for chore in old.chores:
            chore.cancel()
        # Two pollers (the load monitor, a health request) must not both start a worker.
        self._restarting.add(index)
        try:
            self.workers[index] = await self._spawn(index)
        except RuntimeError:
            log.exception("worker %d could not be restarted; trying again later", index)
        finally:
            self._restarting.discard(index)


async def _drain_pipe(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass
