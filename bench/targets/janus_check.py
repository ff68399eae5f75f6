"""Self-check of the Janus target: Janus's CPU per forwarded packet, one publisher to N.

    PYTHONPATH=functions:. .venv/bin/python -m bench.targets.janus_check [--subscribers 10]

Bounded to about a minute. It starts Janus (``bench.targets.janus_server``) pinned to the first
CPU and one client process inside its namespace (``--client`` mode of this module, pinned to
the other CPU): 1 publisher (the pre-encoded VP8 replay of ``bench.load.clip`` plus an Opus
tone) and ``--subscribers`` subscribers, joined with ``bench.targets.janus_client``. It prints
Janus's CPU µs per forwarded packet (its /proc CPU time over the RTP packets the subscribers
counted), its RSS, the subscribers' loss and the veth counters. docs/bench-janus.md explains
each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.load.clip import encode_clip, install_replay_encoder, read_clip
from bench.load.measure import machine_busy_seconds, pin, proc_cpu_seconds, proc_rss_bytes
from bench.load.rtp_counting import SlotCounter, count_raw_rtp
from bench.targets.janus_client import JanusSession, join_janus, loopback_client_configuration
from bench.targets.janus_server import JanusServer

if TYPE_CHECKING:
    from aiortc import RTCPeerConnection

ROOT = Path(__file__).resolve().parents[2]
JOIN_BATCH = 10
"Subscribers the self-check joins at once."


# --- the client process, in the namespace ---------------------------------------------------


async def run_client(spec: dict[str, Any]) -> None:
    """``--client``: 1 publisher + ``subscribers`` subscribers; JSON lines on stdout."""
    if spec.get("cpus"):
        pin(os.getpid(), set(spec["cpus"]))
    import httpx
    from aiortc import RTCPeerConnection

    configuration = loopback_client_configuration()
    install_replay_encoder(read_clip(Path(spec["clip"])))
    fps = int(spec["fps"])

    from bench.load.tracks import PacedTrack, ToneTrack

    def emit(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    pcs: list[RTCPeerConnection] = []
    sessions: list[JanusSession] = []
    counters: dict[str, dict[int, SlotCounter]] = {}
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + float(spec["deadline_seconds"])
    try:
        # Every session holds a long poll open: the pool must outnumber the sessions.
        limits = httpx.Limits(max_connections=4 * (int(spec["subscribers"]) + 10))
        async with httpx.AsyncClient(timeout=30.0, trust_env=False, limits=limits) as http:
            publisher = RTCPeerConnection(configuration)
            pcs.append(publisher)
            publisher.addTrack(ToneTrack(4000))
            publisher.addTrack(PacedTrack(fps))
            sessions.append(
                await join_janus(
                    http,
                    spec["url"],
                    spec["room"],
                    display="publisher",
                    publish=publisher,
                    subscribe=None,
                    video_feeds=0,
                    audio_feeds=0,
                    wait_publishers=0,
                    timeout=20.0,
                )
            )

            async def join_subscriber(index: int) -> JanusSession:
                subscriber = RTCPeerConnection(configuration)
                pcs.append(subscriber)
                name = f"subscriber-{index}"

                def hook(pc: RTCPeerConnection) -> None:
                    counters[name] = count_raw_rtp(pc)

                return await join_janus(
                    http,
                    spec["url"],
                    spec["room"],
                    display=name,
                    publish=None,
                    subscribe=subscriber,
                    video_feeds=1,
                    audio_feeds=1,
                    wait_publishers=1,
                    timeout=60.0,
                    on_subscribe_answer=hook,
                )

            joining = time.monotonic()
            total = int(spec["subscribers"])
            for first in range(0, total, JOIN_BATCH):  # a few at a time: Janus sends a PLI each
                batch = range(first, min(total, first + JOIN_BATCH))
                sessions.extend(await asyncio.gather(*(join_subscriber(i) for i in batch)))
            emit({"event": "joined", "seconds": time.monotonic() - joining})
            while time.monotonic() < deadline:
                try:
                    line = await asyncio.wait_for(
                        loop.run_in_executor(None, sys.stdin.readline),
                        deadline - time.monotonic(),
                    )
                except TimeoutError:
                    break
                if line.strip() == "mark":
                    emit(
                        {
                            "event": "mark",
                            "subscribers": {
                                name: {str(s): [c.received, c.highest] for s, c in slots.items()}
                                for name, slots in counters.items()
                            },
                            "hangups": [h for s in sessions for h in s.hangups],
                            "problems": [p for s in sessions for p in s.problems][:20],
                        }
                    )
                else:  # "stop", or EOF: the parent is gone
                    break
            await asyncio.gather(*(session.close() for session in sessions))
    except BaseException:
        # The parent kills this process once it reads "stopped": say why first.
        emit({"event": "failed", "error": traceback.format_exc(limit=6)[-3000:]})
        raise
    finally:

        async def close(pc: RTCPeerConnection) -> None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pc.close(), 5)

        await asyncio.gather(*(close(pc) for pc in pcs))
        emit({"event": "stopped"})


# --- the parent: Janus, the client process, one measured window -----------------------------


@dataclass
class ForwardingWindow:
    """What one measured window through Janus gave."""

    seconds: float
    subscribers: int
    packets: int
    expected: int
    per_subscriber: dict[str, int]
    janus_cpu_seconds: float
    janus_rss_bytes: int
    client_cpu_seconds: float
    machine_busy_seconds: float
    udp_errors: dict[str, int]
    veth: dict[str, int]
    hangups: list[str]
    problems: list[str]
    join_seconds: float

    @property
    def loss(self) -> float:
        return 1 - self.packets / self.expected if self.expected else 1.0

    @property
    def us_per_packet(self) -> float:
        return 1e6 * self.janus_cpu_seconds / self.packets if self.packets else float("inf")

    @property
    def us_per_sent_packet(self) -> float:
        """Over what Janus sent (the subscribers' sequence numbers), lost packets included.
        Equal to ``us_per_packet`` without loss; a send into a full socket costs less."""
        return 1e6 * self.janus_cpu_seconds / self.expected if self.expected else float("inf")

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "subscribers": self.subscribers,
            "forwarded_packets": self.packets,
            "forwarded_packets_per_second": self.packets / self.seconds,
            "expected_packets": self.expected,
            "loss": self.loss,
            "per_subscriber": self.per_subscriber,
            "janus_cpu_seconds": self.janus_cpu_seconds,
            "janus_cpu_utilisation": self.janus_cpu_seconds / self.seconds,
            "janus_us_per_packet": self.us_per_packet,
            "janus_us_per_sent_packet": self.us_per_sent_packet,
            "janus_rss_bytes": self.janus_rss_bytes,
            "client_cpu_seconds": self.client_cpu_seconds,
            "machine_busy_seconds": self.machine_busy_seconds,
            # Busy time on the machine that is neither Janus nor the client: other sessions.
            "other_cpu_utilisation": (
                self.machine_busy_seconds - self.janus_cpu_seconds - self.client_cpu_seconds
            )
            / self.seconds,
            "udp_errors": self.udp_errors,
            "veth": self.veth,
            "hangups": self.hangups,
            "problems": self.problems,
            "join_seconds": self.join_seconds,
        }


def join_seconds(subscribers: int) -> float:
    """How long the client process may take to join (about 0.2 s a subscriber on a busy
    machine of this kind, several times over)."""
    return 30.0 + 1.0 * subscribers


async def measure_forwarding(
    server: JanusServer,
    *,
    clip: Path,
    fps: int,
    subscribers: int,
    seconds: float,
    warmup: float,
    client_cpus: set[int] | None,
) -> ForwardingWindow:
    """Run the client process against a started server and measure one window."""
    spec = {
        "url": server.url,
        "room": server.room,
        "clip": str(clip),
        "fps": fps,
        "subscribers": subscribers,
        "cpus": sorted(client_cpus) if client_cpus else None,
        "deadline_seconds": join_seconds(subscribers) + 60.0 + warmup + seconds,
    }
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT}"}
    client = await asyncio.create_subprocess_exec(
        *server.wrap(
            [sys.executable, "-m", "bench.targets.janus_check", "--client", json.dumps(spec)]
        ),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )

    async def event(within: float) -> dict[str, Any]:
        assert client.stdout is not None
        line = await asyncio.wait_for(client.stdout.readline(), within)
        if not line:
            raise RuntimeError("the client process ended early (its stderr is above)")
        return dict(json.loads(line))

    async def command(text: str) -> None:
        assert client.stdin is not None
        client.stdin.write(text.encode() + b"\n")
        await client.stdin.drain()

    try:
        joined = await event(join_seconds(subscribers))
        if joined.get("event") != "joined":
            raise RuntimeError(f"the client process could not join (its stderr is above): {joined}")
        await asyncio.sleep(warmup)
        veth_before = server.veth_counters()
        udp_before = server.udp_errors()
        await command("mark")
        cpu_before = proc_cpu_seconds(server.pid)
        client_before = proc_cpu_seconds(client.pid)
        busy_before = machine_busy_seconds()
        started = time.monotonic()
        before = await event(10.0)
        await asyncio.sleep(seconds)
        await command("mark")
        cpu_after = proc_cpu_seconds(server.pid)
        client_after = proc_cpu_seconds(client.pid)
        busy_after = machine_busy_seconds()
        elapsed = time.monotonic() - started
        udp_after = server.udp_errors()
        after = await event(10.0)
        rss = proc_rss_bytes(server.pid)
        veth_after = server.veth_counters()
        await command("stop")
        await asyncio.wait_for(client.wait(), 20.0 + 0.2 * subscribers)
    finally:
        if client.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                client.kill()
            await client.wait()

    per_subscriber: dict[str, int] = {}
    received = expected = 0
    for name, slots in after["subscribers"].items():
        got = 0
        for ssrc, (count, highest) in slots.items():
            old_count, old_highest = before["subscribers"].get(name, {}).get(ssrc, [0, None])
            got += count - old_count
            if old_highest is not None:
                expected += highest - old_highest
            else:  # a slot that began inside the window
                expected += count - old_count
        per_subscriber[name] = got
        received += got
    return ForwardingWindow(
        seconds=elapsed,
        subscribers=subscribers,
        packets=received,
        expected=expected,
        per_subscriber=per_subscriber,
        janus_cpu_seconds=cpu_after - cpu_before,
        janus_rss_bytes=rss,
        client_cpu_seconds=client_after - client_before,
        machine_busy_seconds=busy_after - busy_before,
        udp_errors={k: udp_after[k] - udp_before[k] for k in udp_after},
        veth={k: veth_after[k] - veth_before.get(k, 0) for k in veth_after},
        hangups=list(after.get("hangups", [])),
        problems=list(after.get("problems", [])),
        join_seconds=float(joined.get("seconds", 0.0)),
    )


async def self_check(args: argparse.Namespace) -> dict[str, Any]:
    cpus = sorted(os.sched_getaffinity(0))
    janus_cpus = {cpus[0]} if args.pin and len(cpus) > 1 else None
    client_cpus = set(cpus[1:]) if janus_cpus else None
    with tempfile.TemporaryDirectory(prefix="janus-check-") as temporary:
        workdir = Path(temporary)
        clip = workdir / "clip.vp8"
        clip_info = encode_clip(
            clip, width=640, height=360, fps=args.fps, bitrate=2_000_000, seconds=2.0
        )
        server = JanusServer(
            workdir=workdir / "janus", cpus=janus_cpus, event_loops=args.event_loops
        )
        try:
            await server.start(max_publishers=4, bitrate=2_500_000)
            window = await measure_forwarding(
                server,
                clip=clip,
                fps=args.fps,
                subscribers=args.subscribers,
                seconds=args.seconds,
                warmup=args.warmup,
                client_cpus=client_cpus,
            )
            veth_total = server.veth_counters()
        finally:
            await server.stop()
        return {
            "clip": clip_info,
            "pinned": {"janus": sorted(janus_cpus or []), "client": sorted(client_cpus or [])},
            "event_loops": server.event_loops,
            **window.as_dict(),
            "veth_total": veth_total,
        }


def report(result: dict[str, Any]) -> str:
    per = result["per_subscriber"].values()
    return "\n".join(
        [
            f"Janus 1.1.2 VideoRoom, 1 publisher -> {result['subscribers']} subscribers, "
            f"{result['seconds']:.1f} s window (pinned: {result['pinned']}, "
            f"event_loops {result['event_loops']})",
            f"  forwarded packets/s     {result['forwarded_packets_per_second']:,.0f} "
            f"({result['forwarded_packets']:,} packets; per subscriber {min(per)}..{max(per)})",
            f"  Janus CPU               {100 * result['janus_cpu_utilisation']:.1f} % of a core",
            f"  Janus CPU µs / packet   {result['janus_us_per_packet']:.1f} received"
            f" ({result['janus_us_per_sent_packet']:.1f} per packet sent, lost ones included)",
            f"  Janus RSS               {result['janus_rss_bytes'] / 2**20:.1f} MiB",
            f"  subscriber loss         {100 * result['loss']:.2f} % "
            f"({result['forwarded_packets']:,} of {result['expected_packets']:,})",
            f"  UDP errors (namespace)  {result['udp_errors']}",
            f"  client process CPU      {100 * result['client_cpu_seconds'] / result['seconds']:.0f} %"
            f" of a core; other sessions {100 * result['other_cpu_utilisation']:.0f} % (of 200 %)",
            f"  veth packets in window  {sum(v for k, v in result['veth'].items() if 'packets' in k)}"
            f" (whole run: {sum(v for k, v in result['veth_total'].items() if 'packets' in k)})",
            f"  hangups                 {result['hangups'] or 'none'}",
            f"  session problems        {result['problems'] or 'none'}",
            f"  joining took            {result['join_seconds']:.1f} s",
        ]
    )


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m bench.targets.janus_check", description=__doc__)
    cli.add_argument("--subscribers", type=int, default=10)
    cli.add_argument("--seconds", type=float, default=10.0)
    cli.add_argument("--warmup", type=float, default=3.0)
    cli.add_argument("--fps", type=int, default=30)
    cli.add_argument("--no-pin", dest="pin", action="store_false")
    cli.add_argument(
        "--event-loops",
        type=int,
        default=None,
        help="Janus's event_loops (default: one per pinned CPU; 0: a thread per handle)",
    )
    cli.add_argument("--json", type=Path, help="also write the figures here")
    cli.add_argument("--client", help=argparse.SUPPRESS)
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.client:
        asyncio.run(run_client(json.loads(args.client)))
        return 0
    if not 1 <= args.subscribers <= 200 or not 1 <= args.seconds <= 120:
        raise SystemExit("--subscribers must be 1..200 and --seconds 1..120")
    budget = 30.0 + join_seconds(args.subscribers) + args.warmup + args.seconds
    result = asyncio.run(asyncio.wait_for(self_check(args), budget))
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
