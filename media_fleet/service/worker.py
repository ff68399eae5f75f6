"""One worker process: one event loop, one core, the control API on a loopback port.

The supervisor (`media_fleet.service.supervisor`) starts N of these with
`python -m media_fleet.service.worker ...`. A worker binds a free loopback port itself and
reports it on its first stdout line, as JSON (`{"worker": i, "port": p}`), so no port is ever
guessed and raced for.

Signals: SIGTERM drains (new publish/subscribe get 503, every room's clients are told to move,
then the worker waits until its sessions end or the deadline passes, closes its rooms and
exits 0). SIGINT is ignored: Ctrl-C in a terminal reaches the whole process group, and the
supervisor turns it into an orderly drain. A worker whose supervisor died exits at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from media_fleet.lifecycle import ProcessCpu
from media_fleet.service.control_api import WorkerState, control_app
from media_fleet.service.http_server import ServedApp
from media_fleet.service.keys import TokenGate, jwks_loader
from media_fleet.service.rooms import RoomDirectory, meeting_room_factory
from media_fleet.sfu.statistics import ForwardingStats

if TYPE_CHECKING:
    from media_fleet.rtc.seams import CodecWatch

log = logging.getLogger("media_fleet.service.worker")

PARENT_CHECK_SECONDS = 1.0
SWEEP_SECONDS = 10.0
DRAIN_POLL_SECONDS = 0.2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m media_fleet.service.worker")
    p.add_argument("--node-id", required=True)
    p.add_argument("--worker", type=int, required=True, help="this worker's index")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--jwks", required=True)
    p.add_argument("--announced-host", default=None)
    p.add_argument("--ice-host", action="append", default=[])
    p.add_argument("--video-slots", type=int, default=9)
    p.add_argument("--audio-slots", type=int, default=3)
    p.add_argument("--drain-deadline", type=float, default=600.0)
    p.add_argument("--parent-pid", type=int, default=None, help="exit when this process is gone")
    return p


class Worker:
    def __init__(self, args: argparse.Namespace, codec_watch: CodecWatch | None = None) -> None:
        self.args = args
        self.state = WorkerState(node_id=args.node_id, worker=args.worker)
        # every room of this worker records into it; /v1/health reads it
        self.forwarding = ForwardingStats()
        self.rooms = RoomDirectory(
            meeting_room_factory(
                video_slots=args.video_slots,
                audio_slots=args.audio_slots,
                announced_host=args.announced_host,
                forwarding=self.forwarding,
            )
        )
        self.gate = TokenGate(jwks_loader(args.jwks), args.node_id)
        cpu = ProcessCpu()
        watch = codec_watch

        def codecs() -> dict[str, int]:
            if watch is None:
                return {}
            from media_fleet.rtc.seams import decoder_threads_alive

            return {
                "decoders": len(watch.decoder_threads),
                "encoders": len(watch.encoder_tasks),
                "decoder_threads": decoder_threads_alive(),
            }

        self.app = control_app(
            self.gate,
            self.rooms,
            self.state,
            cpu=cpu.read,
            codecs=codecs,
            forwarding=self.forwarding,
        )
        self.served: ServedApp | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        draining: set[asyncio.Task[None]] = set()
        loop.add_signal_handler(
            signal.SIGTERM, lambda: draining.add(loop.create_task(self.drain_and_stop()))
        )
        loop.add_signal_handler(signal.SIGINT, lambda: None)
        served = self.served = ServedApp(self.app, socket.create_server((self.args.host, 0)))
        await served.start()
        print(json.dumps({"worker": self.args.worker, "port": served.port}), flush=True)
        chores = [
            loop.create_task(self._watch_parent()),
            loop.create_task(self._sweep_forever()),
        ]
        try:
            await served.wait_stopped()
        finally:
            for chore in chores:
                chore.cancel()
            await self.rooms.close_all()

    async def drain_and_stop(self) -> None:
        if self.state.draining:
            return
        self.state.draining = True
        log.info("worker %d draining", self.args.worker)
        await self.rooms.tell_clients_to_move()
        deadline = time.monotonic() + self.args.drain_deadline
        while self.rooms.sessions() > 0 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(DRAIN_POLL_SECONDS)
        self.stop()

    def stop(self) -> None:
        if self.served is not None:
            self.served.stop()

    async def _watch_parent(self) -> None:
        parent = self.args.parent_pid
        if parent is None:
            return
        while True:
            await asyncio.sleep(PARENT_CHECK_SECONDS)
            if os.getppid() != parent:
                log.error("worker %d: the supervisor is gone; stopping", self.args.worker)
                self.stop()
                return

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await self.rooms.sweep_idle()
            except Exception:
                log.exception("sweeping idle rooms failed")


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s worker-{args.worker} %(levelname)s %(name)s: %(message)s",
    )
    # The forwarding path must never decode or encode: make any attempt fail loudly, and
    # refuse to run on an aiortc release whose private seams we have not checked.
    from media_fleet.rtc import seams

    if not seams.aiortc_version_matches():
        log.error(
            "aiortc %s is not the pinned %s", seams.aiortc.__version__, seams.ASSUMED_AIORTC_VERSION
        )
        return 2
    if args.ice_host:
        from media_fleet.service.ice import gather_only_on

        gather_only_on(args.ice_host)
    with (
        seams.watch_codecs(forbid=True) as watch,
        seams.no_decoder_threads(),
        seams.refuse_malformed_packets(),
        contextlib.suppress(KeyboardInterrupt),
    ):
        asyncio.run(Worker(args, watch).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
