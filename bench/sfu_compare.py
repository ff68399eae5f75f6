"""SFU benchmark side by side: our node, Janus 1.1.2 VideoRoom, and a naive aiortc relay.

    PYTHONPATH=functions:. .venv/bin/python -m bench.sfu_compare [--budget-minutes 15]
        [--targets ours,janus,naive] [--scenarios meeting,webinar,audio] [--quick]

One command, bounded in time: a hard deadline (the budget plus a margin) cancels everything,
and every server and client process (and Janus's network namespace) is stopped in ``finally``.
For each scenario and each target it steps the load up (a fresh server per step) until a step
is not held (loss above 2 %, or video frames not delivered), the load generator saturates, or
that target's share of the budget ends:

- ``meeting``: N x N, N = 5, 10, 25, 50, each subscriber gets min(N-1, 9) videos (last-N 9)
  and min(N-1, 3) audio streams;
- ``webinar``: one publisher (audio + video) to M subscribe-only clients, M = 50 .. 400;
- ``audio``: 10 audio-only speakers to M listeners (3 audio streams each), M = 50 .. 400.

The same clip, client processes, subscriptions and pinning serve every target (the server
on the first CPU, the load generator and this process on the others). ``docs/bench-sfu.md``
says how each figure is computed. Output: a table with the ratios ours/Janus and ours/naive,
``bench/results/sfu_compare.json`` (raw numbers) and ``bench/results/sfu_compare.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.load.clip import CLIP_SECONDS, encode_clip
from bench.load.measure import (
    machine_busy_seconds,
    pin,
    proc_cpu_seconds,
    proc_rss_bytes,
    proc_schedstat,
    renice,
    tail,
    udp_receive_drops,
    window_loss,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
MEETING = "bench-compare"
TARGETS = ("ours", "janus", "naive")
LOSS_LIMIT = 0.02
RATE_LIMIT = 0.9
"""A step is held if loss < 2 % and subscribers get at least 90 % of the published video frames
and audio packets (a relay that re-encodes too slowly drops frames before the RTP layer)."""
OPUS_PACKETS_PER_SECOND = 50.0
CLIENT_CPU_LIMIT = 0.9
"The load generator is saturated above 90 % of its core(s)."
JANUS_US_PER_PACKET = 17.0
AIMS = {
    "us_per_packet_to_janus": 0.5,
    "naive_cpu_per_stream_to_ours": 50.0,
    "streams_per_core": 500.0,
    "p99_us": 5000.0,
}
JOIN_TIMEOUT = 120.0
FLOW_TIMEOUT = 40.0
STOP_TIMEOUT = 15.0
HARD_MARGIN = 240.0
"Seconds on top of the budget after which everything is cancelled, whatever the state."


@dataclass(frozen=True)
class Scenario:
    name: str
    loads: tuple[int, ...]
    load_name: str

    def participants(self, load: int) -> list[dict[str, Any]]:
        """Who joins: publishers first, then listeners, with what each subscribes to."""
        if self.name == "meeting":
            return [
                {
                    "index": i,
                    "audio": True,
                    "video": True,
                    "subscribe": True,
                    "video_feeds": min(load - 1, 9),
                    "audio_feeds": min(load - 1, 3),
                    "wait_publishers": load - 1,
                }
                for i in range(load)
            ]
        speakers = 1 if self.name == "webinar" else 10
        video = self.name == "webinar"
        people: list[dict[str, Any]] = [
            {"index": i, "audio": True, "video": video, "subscribe": False} for i in range(speakers)
        ]
        people += [
            {
                "index": speakers + i,
                "audio": False,
                "video": False,
                "subscribe": True,
                "video_feeds": 1 if video else 0,
                "audio_feeds": 1 if video else 3,
                "wait_publishers": speakers,
            }
            for i in range(load)
        ]
        return people

    def streams(self, load: int) -> tuple[int, int]:
        """(video, audio) streams delivered at this load."""
        if self.name == "meeting":
            return load * min(load - 1, 9), load * min(load - 1, 3)
        if self.name == "webinar":
            return load, load
        return 0, 3 * load


SCENARIOS = {
    "meeting": Scenario("meeting", (5, 10, 25, 50), "N (N x N)"),
    "webinar": Scenario("webinar", (50, 100, 200, 400), "M subscribers"),
    "audio": Scenario("audio", (50, 100, 200, 400), "M listeners"),
}


# --- targets: one adapter shape for the three servers ------------------------------------------


class Target:
    """Start a server for one step, say how to reach and meter it, stop it."""

    name = ""

    async def start(self, *, participants: int, server_cpus: set[int]) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    def kill(self) -> None:
        """Last resort (synchronous, by pid)."""

    @property
    def pid(self) -> int:
        raise NotImplementedError

    def token(self, participant: str, *, may_publish: bool) -> str:
        return participant

    def client_spec(self) -> dict[str, Any]:
        raise NotImplementedError

    def wrap(self, argv: list[str]) -> list[str]:
        return argv

    async def health(self) -> dict[str, Any]:
        return {}

    def logs(self) -> list[Path]:
        return []


class OursTarget(Target):
    name = "ours"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.node: Any = None

    async def start(self, *, participants: int, server_cpus: set[int]) -> None:
        from bench.targets.ours import OurNode

        self.node = OurNode(workdir=self.workdir)
        await self.node.start()
        if server_cpus:
            pin(self.node.worker_pid, server_cpus)
            others = set(os.sched_getaffinity(0)) - server_cpus
            if others:
                pin(self.node.process.pid, others)

    async def stop(self) -> None:
        if self.node is not None:
            await self.node.stop()

    def kill(self) -> None:
        if self.node is not None:
            self.node.kill()

    @property
    def pid(self) -> int:
        return int(self.node.worker_pid)

    def token(self, participant: str, *, may_publish: bool) -> str:
        return str(self.node.token(MEETING, participant, may_publish=may_publish))

    def client_spec(self) -> dict[str, Any]:
        return {"target": "ours", "url": self.node.url, "cafile": str(self.node.cert_file)}

    async def health(self) -> dict[str, Any]:
        async with self.node.http() as http:
            reading = await self.node.health(http)
        return dict(reading["workers"][0]) | {"forwarded_streams": reading["forwarded_streams"]}

    def logs(self) -> list[Path]:
        return [self.workdir / "node.err"]


class NaiveTarget(Target):
    name = "naive"

    def __init__(self, workdir: Path, bitrate: int) -> None:
        self.workdir = workdir
        self.bitrate = bitrate
        self.relay: Any = None

    async def start(self, *, participants: int, server_cpus: set[int]) -> None:
        from bench.targets.naive_relay import NaiveRelay

        self.relay = NaiveRelay(workdir=self.workdir, bitrate=self.bitrate)
        await self.relay.start(cpus=server_cpus)

    async def stop(self) -> None:
        if self.relay is not None:
            await self.relay.stop()

    def kill(self) -> None:
        if self.relay is not None:
            self.relay.kill()

    @property
    def pid(self) -> int:
        return int(self.relay.pid)

    def client_spec(self) -> dict[str, Any]:
        return {"target": "naive", "url": self.relay.url}

    async def health(self) -> dict[str, Any]:
        async with self.relay.http() as http:
            return dict(await self.relay.health(http))

    def logs(self) -> list[Path]:
        return [self.workdir / "naive.err"]


class JanusTarget(Target):
    name = "janus"

    def __init__(self, workdir: Path, bitrate: int) -> None:
        self.workdir = workdir
        self.bitrate = bitrate
        self.server: Any = None

    async def start(self, *, participants: int, server_cpus: set[int]) -> None:
        from bench.targets.janus_server import JanusServer

        # Every participant joins the room as a publisher (listeners silently), so the room
        # must take them all. JanusServer accepts only CPUs this process may use, and this
        # process sits on the clients' CPUs: widen it for the start, then put it back.
        own = os.sched_getaffinity(0)
        pin(os.getpid(), own | server_cpus)
        try:
            self.server = JanusServer(workdir=self.workdir / "janus", cpus=server_cpus or None)
            await self.server.start(max_publishers=participants + 5, bitrate=self.bitrate)
        finally:
            pin(os.getpid(), own)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()

    def kill(self) -> None:
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.server.stop_now()

    @property
    def pid(self) -> int:
        return int(self.server.pid)

    def client_spec(self) -> dict[str, Any]:
        return {"target": "janus", "url": self.server.url, "room": self.server.room}

    def wrap(self, argv: list[str]) -> list[str]:
        return list(self.server.wrap(argv))

    async def health(self) -> dict[str, Any]:
        return {"veth": await asyncio.to_thread(self.server.veth_counters)}

    def logs(self) -> list[Path]:
        return [self.workdir / "janus" / "janus.log"]


def make_target(name: str, workdir: Path, bitrate: int) -> Target:
    step_dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workdir))
    if name == "ours":
        return OursTarget(step_dir)
    if name == "naive":
        return NaiveTarget(step_dir, bitrate)
    return JanusTarget(step_dir, bitrate)


# --- one step: a server, the clients, a window --------------------------------------------------


@dataclass
class Step:
    target: Target
    clients: list[asyncio.subprocess.Process] = field(default_factory=list)
    workdir: Path = Path()


async def read_event(process: asyncio.subprocess.Process, within: float) -> dict[str, Any]:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), within)
    if not line:
        raise RuntimeError("a client process ended early (see its stderr)")
    return dict(json.loads(line))


async def mark(clients: list[asyncio.subprocess.Process]) -> list[dict[str, Any]]:
    for client in clients:
        assert client.stdin is not None
        client.stdin.write(b"mark\n")
        await client.stdin.drain()
    return [await read_event(client, 20.0) for client in clients]


async def stop_step(step: Step) -> None:
    for client in step.clients:
        if client.returncode is None and client.stdin is not None:
            with contextlib.suppress(Exception):
                client.stdin.write(b"stop\n")
                await client.stdin.drain()
    for client in step.clients:
        try:
            await asyncio.wait_for(client.wait(), STOP_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                client.kill()
            await client.wait()
    await step.target.stop()


def kill_step(step: Step) -> None:
    for client in step.clients:
        if client.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(client.pid, signal.SIGKILL)
    step.target.kill()


async def run_step(
    step: Step, scenario: Scenario, load: int, ctx: dict[str, Any]
) -> dict[str, Any]:
    target = step.target
    people = scenario.participants(load)
    server_cpus: set[int] = set(ctx["pinning"].get("server", []))
    began = time.monotonic()
    await target.start(participants=len(people), server_cpus=server_cpus)
    server_pid = target.pid
    if ctx["nice"]:
        renice(server_pid, ctx["nice"])
    started_seconds = time.monotonic() - began

    processes = max(1, min(ctx["client_processes"], len(people)))
    shares: list[list[dict[str, Any]]] = [[] for _ in range(processes)]
    for person in people:
        may_publish = bool(person["audio"] or person["video"])
        person["token"] = target.token(f"p{person['index']:04d}", may_publish=may_publish)
        shares[person["index"] % processes].append(person)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT)])}
    for number, share in enumerate(shares):
        spec_file = step.workdir / f"{target.name}-{scenario.name}-{load}-client-{number}.json"
        spec = {
            **target.client_spec(),
            "clip": str(ctx["clip"]),
            "fps": ctx["fps"],
            "participants": share,
            "deadline_seconds": max(30.0, ctx["deadline"] - time.monotonic()),
            "cpus": ctx["pinning"].get("clients", []),
            "nice": ctx["nice"],
            "join_concurrency": 8,
            "join_timeout": JOIN_TIMEOUT,
        }
        spec_file.write_text(json.dumps(spec))
        argv = target.wrap([sys.executable, "-m", "bench.load.client", str(spec_file)])
        step.clients.append(
            await asyncio.create_subprocess_exec(
                *argv,
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=spec_file.with_suffix(".err").open("wb"),
            )
        )
    joined = time.monotonic()
    for client in step.clients:
        event = await read_event(client, JOIN_TIMEOUT + 30)
        assert event["event"] == "joined", event
    join_seconds = time.monotonic() - joined

    # Flowing: every expected stream has delivered a packet at the subscribers.
    video_streams, audio_streams = scenario.streams(load)
    expected = video_streams + audio_streams
    waited = time.monotonic()
    seen = 0
    while time.monotonic() - waited < FLOW_TIMEOUT:
        marks = await mark(step.clients)
        seen = sum(sum(1 for _, high in m["slots"].values() if high is not None) for m in marks)
        if seen >= expected:
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(ctx["warmup"])

    groups = {"server": [server_pid], "clients": [c.pid for c in step.clients]}
    drops1 = udp_receive_drops(groups)
    health1 = await target.health()
    sched1 = proc_schedstat(server_pid)
    server1, machine1 = proc_cpu_seconds(server_pid), machine_busy_seconds()
    parent1 = time.process_time()
    t1 = time.monotonic()
    marks1 = await mark(step.clients)
    rss = [proc_rss_bytes(server_pid)]
    end = t1 + ctx["window"]
    while time.monotonic() < end:
        await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
        rss.append(proc_rss_bytes(server_pid))
    marks2 = await mark(step.clients)
    t2 = time.monotonic()
    server2, machine2 = proc_cpu_seconds(server_pid), machine_busy_seconds()
    sched2 = proc_schedstat(server_pid)
    parent2 = time.process_time()
    health2 = await target.health()
    drops2 = udp_receive_drops(groups)
    elapsed = t2 - t1

    loss = window_loss(marks1, marks2)
    per_slot = loss.pop("per_slot")
    delivered = loss["received"]
    server_cpu = server2 - server1
    clients_cpu = sum(m["cpu_seconds"] for m in marks2) - sum(m["cpu_seconds"] for m in marks1)
    frames = sum(  # frames delivered in the window, on the slots the loss counts
        m2["video_frames"][slot] - m1["video_frames"].get(slot, 0)
        for m1, m2 in zip(marks1, marks2, strict=True)
        for slot in m2["video_frames"]
        if slot in per_slot
    )
    video_slots = sum(1 for k in per_slot if k.endswith("video"))
    audio_slots = [v["received"] for k, v in per_slot.items() if k.endswith("audio")]
    # Opus sends one packet per 20 ms frame whatever the encoder: 50 packets/s per stream.
    audio_ratio = (
        sum(audio_slots) / elapsed / len(audio_slots) / OPUS_PACKETS_PER_SECOND
        if audio_slots
        else None
    )
    frame_ratio = (
        frames / elapsed / video_slots / ctx["fps"] if video_slots and video_streams else None
    )
    e2e = [m["e2e_us"] for m in marks2 if m["e2e_us"]["count"]]
    client_cores = max(1, len(ctx["pinning"].get("clients", [])) or (os.cpu_count() or 1))
    drops = {k: drops2[k] - drops1[k] for k in drops2}
    result: dict[str, Any] = {
        "load": load,
        "participants": len(people),
        "expected_streams": expected,
        "video_streams": video_streams,
        "audio_streams": audio_streams,
        "streams_seen": seen,
        "start_seconds": started_seconds,
        "join_seconds": join_seconds,
        "window_seconds": elapsed,
        "delivered_packets": delivered,
        "delivered_packets_per_second": delivered / elapsed,
        "server_cpu_seconds": server_cpu,
        "server_cpu_utilisation": server_cpu / elapsed,
        "cpu_us_per_packet": server_cpu * 1e6 / delivered if delivered else None,
        "cpu_percent_per_stream": 100 * server_cpu / elapsed / expected if expected else None,
        "server_rss_bytes": max(rss),
        # The server's main thread: on CPU, and runnable but waiting for a CPU (starved).
        "server_main_thread_on_cpu": (sched2[0] - sched1[0]) / elapsed,
        "server_main_thread_waiting_for_cpu": (sched2[1] - sched1[1]) / elapsed,
        "subscriber_loss": loss["loss"],
        "subscriber_worst_slot_loss": loss["worst_slot_loss"],
        "subscriber_slots": loss["slots"],
        "subscriber_expected": loss["expected"],
        "video_frame_rate_ratio": frame_ratio,
        "audio_packet_rate_ratio": audio_ratio,
        "end_to_end_us": {
            "p50": max((s["p50"] for s in e2e), default=None),
            "p99": max((s["p99"] for s in e2e), default=None),
            "samples": sum(s["count"] for s in e2e),
        },
        "clients_cpu_utilisation": clients_cpu / elapsed / client_cores,
        "machine_cpu_utilisation": (machine2 - machine1) / elapsed,
        "other_cpu_utilisation": (
            (machine2 - machine1) - server_cpu - clients_cpu - (parent2 - parent1)
        )
        / elapsed,
        "udp_receive_buffer_drops": drops,
        "keyframes_forced": sum(m["keyframes_forced"] for m in marks2)
        - sum(m["keyframes_forced"] for m in marks1),
    }
    if target.name == "ours":
        from media_fleet.sfu.statistics import ForwardingStats, latency_summary

        counts = [0] * ForwardingStats.BUCKETS
        for index, count in health2.get("forward_latency_histogram", []):
            counts[index] += count
        for index, count in health1.get("forward_latency_histogram", []):
            counts[index] -= count
        result["added_latency_us"] = latency_summary(counts)
        node_forwarded = health2["forwarded_packets"] - health1["forwarded_packets"]
        result["server_forwarded_packets_per_second"] = node_forwarded / elapsed
        result["server_cpu_seconds_self"] = (
            health2["process_cpu_seconds"] - health1["process_cpu_seconds"]
        )
    elif target.name == "naive":
        forwarded = health2["forwarded_packets"] - health1["forwarded_packets"]
        result["server_forwarded_packets_per_second"] = forwarded / elapsed
        result["added_latency_us"] = None  # re-encoded frames carry no stamp: not measured
        result["end_to_end_us"] = None
    else:
        result["added_latency_us"] = None  # Janus has no such histogram: see end_to_end_us
        result["veth"] = health2.get("veth")
    held = (
        loss["loss"] < LOSS_LIMIT
        and (frame_ratio is None or frame_ratio >= RATE_LIMIT)
        and (audio_ratio is None or audio_ratio >= RATE_LIMIT)
    )
    # Client-limited: the load generator's core is saturated, or the step failed and the
    # kernel dropped at least half the lost packets at the clients' own sockets. A held step
    # with a few drops at the clients stays valid (its loss counts them, against the server).
    client_limited = []
    lost = loss["expected"] - loss["received"]
    if result["clients_cpu_utilisation"] >= CLIENT_CPU_LIMIT:
        client_limited.append(f"load generator at {100 * result['clients_cpu_utilisation']:.0f} %")
    if not held and lost > 0 and drops.get("clients", 0) >= lost / 2:
        client_limited.append(f"{drops['clients']} of {lost} lost packets dropped at the clients")
    result["held"] = bool(held and seen >= expected)
    result["client_limited"] = client_limited
    derive(result)
    return result


async def run_target_scenario(
    name: str, scenario: Scenario, loads: Sequence[int], share_end: float, ctx: dict[str, Any]
) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    reason = "all loads done"
    for load in loads:
        if steps and time.monotonic() + ctx["step_estimate"](scenario, load) > share_end:
            reason = "time budget"
            break
        target = make_target(name, ctx["workdir"], ctx["bitrate"])
        step = Step(target, workdir=ctx["workdir"])
        print(f"[{time.strftime('%H:%M:%S')}] {name} {scenario.name} {load} ...", flush=True)
        try:
            outcome = await run_step(step, scenario, load, ctx)
        except Exception as error:  # a step that fails is recorded, and stepping stops
            logs = {p.name: tail(p) for p in [*target.logs(), *step.workdir.glob("*.err")]}
            steps.append({"load": load, "error": repr(error), "logs": logs})
            print(f"  error: {error!r}", flush=True)
            reason = "error"
            break
        finally:
            try:
                await asyncio.wait_for(stop_step(step), 2 * STOP_TIMEOUT + 10)
            finally:
                kill_step(step)
        if not outcome["held"]:  # the server's and this step's clients' last log lines
            prefix = f"{name}-{scenario.name}-{load}-"
            errs = [p for p in step.workdir.glob(f"{prefix}*.err")]
            outcome["logs"] = {p.name: tail(p) for p in [*target.logs(), *errs] if tail(p)}
        steps.append(outcome)
        print("  " + step_line(outcome), flush=True)
        if outcome["client_limited"]:
            reason = "client-limited: " + "; ".join(outcome["client_limited"])
            break
        if not outcome["held"]:
            reason = (
                f"not held: loss {100 * outcome['subscriber_loss']:.2f} %, video frame rate "
                f"ratio {fmt(outcome['video_frame_rate_ratio'], '.2f')}, audio packet rate "
                f"ratio {fmt(outcome['audio_packet_rate_ratio'], '.2f')}, "
                f"{outcome['streams_seen']} of {outcome['expected_streams']} streams flowing"
            )
            break
    held = [s["load"] for s in steps if s.get("held") and not s.get("client_limited")]
    return {
        "steps": steps,
        "stopped_because": reason,
        "largest_load_held": max(held, default=None),
    }


def step_line(s: dict[str, Any]) -> str:
    e2e = s.get("end_to_end_us") or {}
    added = s.get("added_latency_us") or {}
    return (
        f"{s['delivered_packets_per_second']:,.0f} pkt/s, "
        f"{fmt(s['cpu_us_per_packet'], '.1f')} µs/pkt, "
        f"server {100 * s['server_cpu_utilisation']:.0f} %, "
        f"{s['server_rss_bytes'] / 2**20:.0f} MiB, loss {100 * s['subscriber_loss']:.2f} %, "
        f"rate {fmt(rate_ratio(s), '.2f')}, "
        f"added p50/p99 {fmt(added.get('p50'), '.0f')}/{fmt(added.get('p99'), '.0f')} µs, "
        f"e2e p50/p99 {fmt(e2e.get('p50'), '.0f')}/{fmt(e2e.get('p99'), '.0f')} µs, "
        f"clients {100 * s['clients_cpu_utilisation']:.0f} %, "
        f"server waited for CPU {100 * s.get('server_main_thread_waiting_for_cpu', 0):.0f} %, "
        f"not ours {100 * s['other_cpu_utilisation']:.0f} %"
    )


def derive(step: dict[str, Any]) -> None:
    """CPU per full-rate stream: the server's CPU share over the streams it delivered, each
    weighted by its delivery rate (capped at 1; above 1 is a backlog draining). A relay that
    delivers a tenth of the frames delivers a tenth of a stream: per delivered stream it would
    look ten times cheaper than it is."""
    video = min(1.0, step.get("video_frame_rate_ratio") or 0.0) * step["video_streams"]
    audio = min(1.0, step.get("audio_packet_rate_ratio") or 0.0) * step["audio_streams"]
    full = video + audio
    step["full_rate_streams"] = full
    step["cpu_percent_per_full_rate_stream"] = (
        100 * step["server_cpu_utilisation"] / full if full > 0 else None
    )


def rate_ratio(s: dict[str, Any]) -> float | None:
    """The delivery ratio shown: video frames if the step has video, else audio packets."""
    video = s.get("video_frame_rate_ratio")
    return video if video is not None else s.get("audio_packet_rate_ratio")


def fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


# --- ratios, table, plot -----------------------------------------------------------------------


def ratios(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per scenario step measured on ours and another target: ours / theirs."""
    rows = []
    for scenario, by_target in results.items():
        ours = {
            s["load"]: s for s in by_target.get("ours", {}).get("steps", []) if "error" not in s
        }
        for load, mine in sorted(ours.items()):
            row: dict[str, Any] = {"scenario": scenario, "load": load}
            for other in ("janus", "naive"):
                theirs = {
                    s["load"]: s
                    for s in by_target.get(other, {}).get("steps", [])
                    if "error" not in s
                }.get(load)
                if theirs is None:
                    continue
                for key in (
                    "cpu_us_per_packet",
                    "cpu_percent_per_stream",
                    "cpu_percent_per_full_rate_stream",
                    "server_rss_bytes",
                ):
                    if mine.get(key) and theirs.get(key):
                        row[f"{key}_ours_to_{other}"] = mine[key] / theirs[key]
                row[f"loss_{other}"] = theirs["subscriber_loss"]
            row["loss_ours"] = mine["subscriber_loss"]
            rows.append(row)
    return rows


def aims(results: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    ours_steps = [
        s
        for by_target in results.values()
        for s in by_target.get("ours", {}).get("steps", [])
        if "error" not in s and s.get("held")
    ]
    to_janus = [
        r["cpu_us_per_packet_ours_to_janus"] for r in rows if "cpu_us_per_packet_ours_to_janus" in r
    ]
    to_naive = [
        r["cpu_percent_per_full_rate_stream_ours_to_naive"]
        for r in rows
        if "cpu_percent_per_full_rate_stream_ours_to_naive" in r
    ]
    # Streams per core: video streams delivered per core of server CPU at the held steps
    # (an extrapolation to a full core from the CPU share measured).
    per_core = [
        s["video_streams"] / s["server_cpu_utilisation"]
        for s in ours_steps
        if s["video_streams"] and s["server_cpu_utilisation"] > 0
    ]
    p99 = [s["added_latency_us"]["p99"] for s in ours_steps if s.get("added_latency_us")]
    return {
        "cpu_per_packet_ours_to_janus": {
            "aim": f"<= {AIMS['us_per_packet_to_janus']}",
            "measured": to_janus,
            "met": bool(to_janus) and max(to_janus) <= AIMS["us_per_packet_to_janus"],
        },
        "cpu_per_stream_naive_to_ours": {
            "aim": f">= {AIMS['naive_cpu_per_stream_to_ours']}",
            "measured": [1 / r for r in to_naive],
            "met": bool(to_naive)
            and min(1 / r for r in to_naive) >= AIMS["naive_cpu_per_stream_to_ours"],
        },
        "video_streams_per_core_ours": {
            "aim": f">= {AIMS['streams_per_core']} (loss < 2 %)",
            "measured": per_core,
            "met": bool(per_core) and max(per_core) >= AIMS["streams_per_core"],
            "note": "video streams delivered / server CPU share, at held steps (extrapolated)",
        },
        "added_latency_p99_us_ours": {
            "aim": f"<= {AIMS['p99_us']:.0f}",
            "measured": p99,
            "met": bool(p99) and max(p99) <= AIMS["p99_us"],
        },
    }


def table(report: dict[str, Any]) -> str:
    lines = []
    header = (
        f"{'scenario':<8} {'load':>5} {'target':<6} {'pkt/s':>9} {'µs/pkt':>8} {'%core/str':>9} "
        f"{'MiB':>5} {'loss %':>7} {'rate':>6} {'p50/p99 µs':>13} {'clients %':>9}"
    )
    lines.append(header)
    for scenario, by_target in report["results"].items():
        for target, run in by_target.items():
            for s in run["steps"]:
                if "error" in s:
                    lines.append(f"{scenario:<8} {s['load']:>5} {target:<6} error: {s['error']}")
                    continue
                latency = s.get("added_latency_us") or s.get("end_to_end_us") or {}
                lines.append(
                    f"{scenario:<8} {s['load']:>5} {target:<6} "
                    f"{s['delivered_packets_per_second']:>9,.0f} "
                    f"{fmt(s['cpu_us_per_packet'], '.1f'):>8} "
                    f"{fmt(s['cpu_percent_per_full_rate_stream'], '.3f'):>9} "
                    f"{s['server_rss_bytes'] / 2**20:>5.0f} "
                    f"{100 * s['subscriber_loss']:>7.2f} "
                    f"{fmt(rate_ratio(s), '.2f'):>6} "
                    f"{fmt(latency.get('p50'), '.0f') + '/' + fmt(latency.get('p99'), '.0f'):>13} "
                    f"{100 * s['clients_cpu_utilisation']:>9.0f}"
                )
            lines.append(
                f"{'':<8} {'':>5} {target:<6} largest held: {run['largest_load_held']}; "
                f"stopped: {run['stopped_because']}"
            )
    lines.append(
        "pkt/s: delivered to the subscribers; µs/pkt: server CPU per delivered packet; "
        "%core/str: server CPU (% of a core) per full-rate stream; rate: delivered ÷ published "
        "(video frames, or audio packets); p50/p99: ours added latency, janus end to end"
    )
    lines.append("")
    lines.append("ratios, ours / other at the same step (lower is better for ours):")
    lines.append(
        f"{'scenario':<8} {'load':>5} {'µs/pkt ÷Janus':>14} {'%core/str ÷Janus':>17} "
        f"{'µs/pkt ÷naive':>14} {'%core/str ÷naive':>17}"
    )
    for row in report["ratios"]:
        lines.append(
            f"{row['scenario']:<8} {row['load']:>5} "
            f"{fmt(row.get('cpu_us_per_packet_ours_to_janus'), '.2f'):>14} "
            f"{fmt(row.get('cpu_percent_per_full_rate_stream_ours_to_janus'), '.2f'):>17} "
            f"{fmt(row.get('cpu_us_per_packet_ours_to_naive'), '.3f'):>14} "
            f"{fmt(row.get('cpu_percent_per_full_rate_stream_ours_to_naive'), '.3f'):>17}"
        )
    lines.append("")
    lines.append("aims:")
    for name, aim in report["aims"].items():
        measured = ", ".join(fmt(v, ".3g") for v in aim["measured"]) or "not measured"
        lines.append(f"  {name}: aim {aim['aim']}; measured {measured}; met: {aim['met']}")
    lines.append(
        "latency: ours = added latency in the node (its histogram); janus = end to end "
        "(send stamp to receipt, includes both clients); naive = not measured (re-encoded)"
    )
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(report["results"])
    figure, axes = plt.subplots(2, len(scenarios), figsize=(5 * len(scenarios), 8), squeeze=False)
    colours = {"ours": "tab:blue", "janus": "tab:orange", "naive": "tab:red"}
    for column, scenario in enumerate(scenarios):
        top, bottom = axes[0][column], axes[1][column]
        for target, run in report["results"][scenario].items():
            steps = [s for s in run["steps"] if "error" not in s]
            loads = [s["load"] for s in steps]
            cpu = [s["cpu_us_per_packet"] or float("nan") for s in steps]
            loss = [100 * s["subscriber_loss"] for s in steps]
            colour = colours.get(target)
            top.plot(loads, cpu, marker="o", label=target, color=colour)
            bottom.plot(loads, loss, marker="o", label=f"{target} loss", color=colour)
            missing = [100 * (1 - min(1.0, rate_ratio(step) or 0.0)) for step in steps]
            bottom.plot(
                loads, missing, linestyle="--", marker=".", color=colour,
                label=f"{target} frames/packets not delivered",
            )  # fmt: skip
            # Steps not held (or client-limited) get a cross on top of their dot.
            failed = [i for i, step in enumerate(steps) if not step["held"]]
            for axis, values in ((top, cpu), (bottom, loss)):
                axis.scatter(
                    [loads[i] for i in failed], [values[i] for i in failed],
                    marker="x", s=90, color="black", zorder=3,
                )  # fmt: skip
        top.set_yscale("log")
        top.set_title(f"{scenario}: server CPU per delivered packet (x: not held)", fontsize=10)
        top.set_ylabel("CPU µs / packet (log)")
        bottom.set_title(f"{scenario}: subscriber loss, and what was never sent", fontsize=10)
        bottom.set_ylabel("%")
        bottom.axhline(100 * LOSS_LIMIT, color="grey", linestyle="--", linewidth=1)
        for axis in (top, bottom):
            axis.set_xlabel(SCENARIOS[scenario].load_name)
            axis.grid(True, alpha=0.3)
            axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


# --- the run -----------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    janus = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        janus = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", "janus"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()

    def git(*argv: str) -> str:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            return subprocess.run(
                ["git", *argv], cwd=ROOT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        return ""

    return {
        # The node under test is the working tree's media_fleet: its commit, and whether
        # media_fleet differs from it (someone's uncommitted work would be measured).
        "commit": git("rev-parse", "HEAD"),
        "media_fleet_uncommitted_changes": git("status", "--porcelain", "--", "media_fleet"),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "aiortc": importlib.metadata.version("aiortc"),
        "janus": janus or None,
        "kernel": platform.release(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


async def compare(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    started = time.monotonic()
    machine = machine_info()  # at the start: the date and the code the run measures
    budget = args.budget_minutes * 60
    deadline = started + budget
    cpus = sorted(os.sched_getaffinity(0))
    pinning: dict[str, list[int]] = {}
    if args.pin and len(cpus) >= 2:
        pinning = {"server": cpus[:1], "clients": cpus[1:]}
        pin(os.getpid(), set(pinning["clients"]))
    if args.nice:
        renice(os.getpid(), args.nice)
    clip = workdir / "clip.vp8"
    clip_info = encode_clip(
        clip, width=args.width, height=args.height, fps=args.fps, bitrate=args.bitrate,
        seconds=CLIP_SECONDS,
    )  # fmt: skip
    print(f"clip: {clip_info}", flush=True)
    window, warmup = (args.seconds, args.warmup)

    def step_estimate(scenario: Scenario, load: int) -> float:
        joins = len(scenario.participants(load)) * 0.3  # measured: 0.1-0.3 s per join
        return 8.0 + joins + warmup + window + 5.0

    ctx: dict[str, Any] = {
        "clip": clip,
        "fps": args.fps,
        "bitrate": args.bitrate,
        "pinning": pinning,
        "nice": args.nice,
        "client_processes": args.client_processes,
        "window": window,
        "warmup": warmup,
        "deadline": deadline + HARD_MARGIN,
        "workdir": workdir,
        "step_estimate": step_estimate,
    }
    results: dict[str, dict[str, Any]] = {}
    combos = [(s, t) for s in args.scenarios for t in args.targets]
    for number, (scenario_name, target) in enumerate(combos):
        scenario = SCENARIOS[scenario_name]
        remaining = deadline - time.monotonic()
        share_end = time.monotonic() + max(0.0, remaining) / (len(combos) - number)
        loads = scenario.loads[:1] if args.quick else scenario.loads
        results.setdefault(scenario_name, {})[target] = await run_target_scenario(
            target, scenario, loads, share_end, ctx
        )
    rows = ratios(results)
    return {
        "machine": machine,
        "settings": {
            "budget_minutes": args.budget_minutes,
            "quick": args.quick,
            "window_seconds": window,
            "warmup_seconds": warmup,
            "client_processes": args.client_processes,
            "cpu_pinning": pinning,
            "nice": args.nice,
            "loss_limit": LOSS_LIMIT,
            "rate_limit": RATE_LIMIT,
            "client_cpu_limit": CLIENT_CPU_LIMIT,
        },
        "clip": {
            "width": args.width,
            "height": args.height,
            "fps": args.fps,
            "bitrate": args.bitrate,
            **clip_info,
        },
        "results": results,
        "ratios": rows,
        "aims": aims(results, rows),
        "janus_reference_us_per_packet": JANUS_US_PER_PACKET,
        "duration_seconds": time.monotonic() - started,
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.sfu_compare", description=__doc__)
    p.add_argument("--budget-minutes", type=float, default=15.0)
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--quick", action="store_true", help="the smallest load only, short windows")
    p.add_argument("--seconds", type=float, default=None, help="window (8 s, quick 4 s)")
    p.add_argument("--warmup", type=float, default=None, help="after streams flow (3 s, quick 2)")
    p.add_argument("--client-processes", type=int, default=2)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--bitrate", type=int, default=2_000_000)
    p.add_argument("--no-pin", dest="pin", action="store_false")
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        help="nice value for the servers, the clients and this process, the same for every "
        "target (e.g. -5 on a machine that others load; needs root for a negative value)",
    )
    p.add_argument("--out", type=Path, default=RESULTS / "sfu_compare.json")
    p.add_argument("--plot", type=Path, default=None, help="PNG path (default: next to --out)")
    p.add_argument(
        "--from-json",
        type=Path,
        default=None,
        help="run nothing: recompute the table, ratios, aims and plot of a saved report",
    )
    return p


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = parser()
    args = p.parse_args(argv)
    args.targets = [t for t in args.targets.split(",") if t]
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    bad = [t for t in args.targets if t not in TARGETS]
    bad += [s for s in args.scenarios if s not in SCENARIOS]
    if bad or not args.targets or not args.scenarios:
        p.error(f"unknown or missing targets/scenarios: {bad}; choose from {TARGETS}, "
                f"{tuple(SCENARIOS)}")  # fmt: skip
    if args.budget_minutes <= 0:
        p.error("--budget-minutes must be positive")
    if args.seconds is None:
        args.seconds = 4.0 if args.quick else 8.0
    if args.warmup is None:
        args.warmup = 2.0 if args.quick else 3.0
    if args.plot is None:
        args.plot = args.out.with_suffix(".png")
    return args


AUTOGROUP = Path("/proc/self/autogroup")


def set_autogroup_nice(niceness: int) -> bool:
    """With the kernel's autogroups, nice only ranks tasks inside one session's group; the
    groups share the CPU by their own nice. The servers, clients and this process are all in
    this process's group, so ``--nice`` sets it too (it is restored at the end)."""
    try:
        AUTOGROUP.write_text(str(niceness))
    except OSError:
        return False
    return True


async def bounded(args: argparse.Namespace) -> dict[str, Any]:
    autogroup = bool(args.nice) and set_autogroup_nice(args.nice)
    try:
        with tempfile.TemporaryDirectory(prefix="sfu-compare-") as workdir:
            report = await asyncio.wait_for(
                compare(args, Path(workdir)), args.budget_minutes * 60 + HARD_MARGIN
            )
    finally:
        if autogroup:
            set_autogroup_nice(0)
    report["settings"]["autogroup_nice_set"] = autogroup
    return report


def rederive(report: dict[str, Any]) -> dict[str, Any]:
    """Recompute the derived figures, ratios and aims of a saved report (``--from-json``)."""
    results = report["results"]  # saved with sorted keys: back to the run's order
    report["results"] = {
        name: {t: results[name][t] for t in TARGETS if t in results[name]}
        for name in SCENARIOS
        if name in results
    }
    for by_target in report["results"].values():
        for run in by_target.values():
            for step in run["steps"]:
                if "error" not in step:
                    derive(step)
    report["ratios"] = ratios(report["results"])
    report["aims"] = aims(report["results"], report["ratios"])
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.from_json is not None:
        report = rederive(json.loads(args.from_json.read_text()))
    else:
        report = asyncio.run(bounded(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    plot(report, args.plot)
    print(table(report))
    print(f"duration: {report['duration_seconds']:.0f} s")
    print(f"raw numbers: {args.out}\nplot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
