"""SFU forwarding benchmark: an N x N meeting through a real node process, on loopback.

    PYTHONPATH=functions:. .venv/bin/python -m bench.sfu_forwarding [--participants 10]
        [--seconds 20] [--video-slots 9] [--client-processes 2]

One command, bounded in time (about 1 minute at the defaults; a hard deadline kills everything
after ``--seconds`` + 150 s). It starts, on 127.0.0.1 only:

- a node (``python -m media_fleet --workers 1 --ice-host 127.0.0.1``) with a temporary JWKS,
  its worker pinned to the first CPU and everything else to the others (``--no-pin``: not);
- ``--client-processes`` headless aiortc client processes (``python -m bench.load.client``),
  which share the participants. Each participant publishes audio and camera and subscribes.

Publishers send **pre-encoded VP8**: the parent encodes a 2 s clip once (noise frames, so the
rate controller spends the whole bitrate; a keyframe every 2 s), and each client process
replaces ``aiortc.rtcrtpsender.get_encoder`` (in its own process only) with
a replay encoder (``bench.load.clip``), which returns the stored frames in a loop, packetized by aiortc's own
VP8 packetizer. A keyframe request (PLI from the node) makes the replay jump to the clip's
keyframe. The last 8 bytes of each frame are overwritten with a monotonic send time, which
the subscribers read back for an end-to-end latency. Audio is aiortc's Opus encoder on a
constant square tone (a distinct amplitude per participant, so the audio-level extension
ranks them and the active speaker is stable).

Subscribers never decode: each subscribe receiver's RTP handler is replaced by a counter
(``bench.load.rtp_counting``; sequence gaps per slot = loss; no jitter buffer, no NACK, so no
RTX hides a loss).

Figures (``docs/bench-sfu.md`` explains each): forwarded packets/s, worker CPU µs per
forwarded packet (its own CPU time over the window), added latency p50/p99 through the node
(the room's histogram, ``forward_latency_histogram`` in ``/v1/health``), node RSS, subscriber
loss, end-to-end latency, and the Python per-packet floor (SRTP protect + loopback
``sendto``) measured in the same run. Raw numbers go to
``bench/results/sfu_forwarding-<N>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
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
    measure_floor,
    pin,
    proc_cpu_seconds,
    proc_rss_bytes,
    tail,
    udp_receive_drops,
    window_loss,
)
from bench.targets.ours import OurNode

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
MEETING = "bench-meeting"
JANUS_US_PER_PACKET = 17.0
"Janus 1.1.2 on this kind of machine (issue 5): the reference for the target."
TARGET_US_PER_PACKET = 0.5 * JANUS_US_PER_PACKET
TARGET_P99_US = 5000.0
NODE_START_TIMEOUT = 30.0
JOIN_TIMEOUT = 90.0
STREAMS_TIMEOUT = 40.0
STOP_TIMEOUT = 15.0
HARD_MARGIN = 150.0
"Seconds on top of --seconds after which everything is killed, whatever the state."


# --- the parent: node, clients, measurement --------------------------------------------------


PROFILE_HOOK = """\
import atexit, cProfile, os, sys
if "media_fleet.service.worker" in getattr(sys, "orig_argv", []):
    _profile = cProfile.Profile()
    _profile.enable()
    atexit.register(lambda: _profile.dump_stats(os.environ["BENCH_PROFILE_OUT"]))
"""
"A ``sitecustomize`` for ``--profile``: cProfile in the node's worker process only."


def profile_summary(path: Path, top: int = 25) -> list[dict[str, Any]]:
    """The functions with the most own time in a cProfile dump of the worker."""
    import pstats

    stats = pstats.Stats(str(path))
    rows = []
    for (file, line, name), (_, calls, own, total, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{Path(file).name}:{line}:{name}",
                "calls": calls,
                "own_s": round(own, 3),
                "cumulative_s": round(total, 3),
            }
        )
    rows.sort(key=lambda row: -row["own_s"])
    return rows[:top]


@dataclass
class Run:
    args: argparse.Namespace
    workdir: Path
    node: OurNode | None = None
    clients: list[asyncio.subprocess.Process] = field(default_factory=list)
    url: str = ""


async def read_event(process: asyncio.subprocess.Process, within: float) -> dict[str, Any]:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), within)
    if not line:
        raise RuntimeError("a client process ended early (see its stderr in the output)")
    return dict(json.loads(line))


def histogram_delta(before: dict[str, Any], after: dict[str, Any]) -> list[int]:
    from media_fleet.sfu.statistics import ForwardingStats

    counts = [0] * ForwardingStats.BUCKETS
    for index, count in after.get("forward_latency_histogram", []):
        counts[index] += count
    for index, count in before.get("forward_latency_histogram", []):
        counts[index] -= count
    return counts


async def measure(run: Run) -> dict[str, Any]:

    from media_fleet.sfu.statistics import latency_summary

    args = run.args
    n = args.participants
    result: dict[str, Any] = {
        "participants": n,
        "video_slots": args.video_slots,
        "audio_slots": 3,
        "seconds": args.seconds,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }

    clip = run.workdir / "clip.vp8"
    result["clip"] = {
        "width": args.width,
        "height": args.height,
        "fps": args.fps,
        "bitrate": args.bitrate,
        **encode_clip(
            clip,
            width=args.width,
            height=args.height,
            fps=args.fps,
            bitrate=args.bitrate,
            seconds=CLIP_SECONDS,
        ),
    }
    print(f"clip: {result['clip']}", flush=True)

    extra_pythonpath, extra_env = [], {}
    if args.profile:
        hook = run.workdir / "profile-hook"
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(PROFILE_HOOK)
        extra_pythonpath = [hook]
        extra_env["BENCH_PROFILE_OUT"] = str(run.workdir / "worker.prof")
    node = run.node = OurNode(
        workdir=run.workdir,
        video_slots=args.video_slots,
        extra_pythonpath=extra_pythonpath,
        extra_env=extra_env,
    )
    await node.start()
    assert node.process is not None
    run.url = node.url
    worker_pid = node.worker_pid
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT)])}

    async with node.http() as http:
        cpus = sorted(os.sched_getaffinity(0))
        pinning: dict[str, list[int]] = {}
        if args.pin and len(cpus) >= 2:
            # The worker owns one core (as on a node: one worker per core); the load
            # generator, the supervisor and this process share the others.
            pinning = {"worker": cpus[:1], "rest": cpus[1:]}
            pin(worker_pid, set(pinning["worker"]))
            pin(node.process.pid, set(pinning["rest"]))
            pin(os.getpid(), set(pinning["rest"]))
        result["cpu_pinning"] = pinning

        # The floor, on this machine, now (node idle, no clients yet).
        result["floor"] = measure_floor(args.floor_packet_bytes)
        print(f"floor: {result['floor']}", flush=True)

        # Clients: participants dealt round-robin over the client processes.
        processes = max(1, min(args.client_processes, n))
        shares: list[list[dict[str, Any]]] = [[] for _ in range(processes)]
        for index in range(n):
            token = node.token(MEETING, f"p{index:03d}", may_publish=True)
            shares[index % processes].append({"index": index, "token": token})
        deadline_seconds = args.seconds + HARD_MARGIN
        for number, share in enumerate(shares):
            spec_file = run.workdir / f"client-{number}.json"
            spec = {
                "url": run.url,
                "cafile": str(node.cert_file),
                "clip": str(clip),
                "fps": args.fps,
                "participants": share,
                "deadline_seconds": deadline_seconds,
                "cpus": pinning.get("rest", []),
            }
            spec_file.write_text(json.dumps(spec))
            err = (run.workdir / f"client-{number}.err").open("wb")
            run.clients.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bench.load.client",
                    str(spec_file),
                    cwd=ROOT,
                    env=env,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=err,
                )
            )
        joined_at = time.monotonic()
        for client in run.clients:
            event = await read_event(client, JOIN_TIMEOUT)
            assert event["event"] == "joined", event
        result["join_seconds"] = time.monotonic() - joined_at

        cameras = min(args.video_slots, n - 1)
        audios = min(3, n - 1)
        expected_streams = n * (cameras + audios)
        result["expected_streams"] = expected_streams
        waited = time.monotonic()
        while True:
            node_health = await node.health(http)
            if node_health["forwarded_streams"] >= expected_streams:
                break
            if time.monotonic() - waited > STREAMS_TIMEOUT:
                raise RuntimeError(
                    f"only {node_health['forwarded_streams']} of {expected_streams} streams"
                )
            await asyncio.sleep(0.5)
        await asyncio.sleep(args.warmup)

        async def mark() -> tuple[list[dict[str, Any]], dict[str, Any], float, float]:
            for client in run.clients:
                assert client.stdin is not None
                client.stdin.write(b"mark\n")
                await client.stdin.drain()
            now, cpu = time.monotonic(), proc_cpu_seconds(worker_pid)
            reading = await node.health(http)
            marks = [await read_event(client, 20.0) for client in run.clients]
            return marks, reading, now, cpu

        groups = {"node": [worker_pid], "clients": [c.pid for c in run.clients]}
        drops1 = udp_receive_drops(groups)
        marks1, health1, t1, cpu1 = await mark()
        machine1, parent1 = machine_busy_seconds(), time.process_time()
        supervisor_cpu1 = proc_cpu_seconds(node.process.pid)
        clients_cpu1 = sum(m["cpu_seconds"] for m in marks1)
        rss_samples, pps_samples = [], []
        end = t1 + args.seconds
        while time.monotonic() < end:
            await asyncio.sleep(min(2.0, max(0.0, end - time.monotonic())))
            sample = await node.health(http)
            rss_samples.append(proc_rss_bytes(worker_pid))
            pps_samples.append(sample["packets_per_second"])
        marks2, health2, t2, cpu2 = await mark()
        machine2, parent2 = machine_busy_seconds(), time.process_time()
        drops2 = udp_receive_drops(groups)
        supervisor_cpu2 = proc_cpu_seconds(node.process.pid)
        clients_cpu2 = sum(m["cpu_seconds"] for m in marks2)

    elapsed = t2 - t1
    w1, w2 = health1["workers"][0], health2["workers"][0]
    forwarded = w2["forwarded_packets"] - w1["forwarded_packets"]
    cpu_proc = cpu2 - cpu1
    cpu_self = w2["process_cpu_seconds"] - w1["process_cpu_seconds"]
    us_per_packet = cpu_self * 1e6 / forwarded if forwarded else float("nan")
    latency = latency_summary(histogram_delta(w1, w2))

    loss = window_loss(marks1, marks2)
    video_packets = sum(m["video_packets_sent"] for m in marks2) - sum(
        m["video_packets_sent"] for m in marks1
    )
    e2e = [m["e2e_us"] for m in marks2 if m["e2e_us"]["count"]]
    floor_us = result["floor"]["floor_us"]
    result.update(
        {
            "window_seconds": elapsed,
            "forwarded_streams": health2["forwarded_streams"],
            "forwarded_packets": forwarded,
            "forwarded_packets_per_second": forwarded / elapsed,
            "node_reported_packets_per_second": pps_samples,
            "worker_cpu_seconds": cpu_self,
            "worker_cpu_seconds_proc_stat": cpu_proc,
            "worker_cpu_utilisation": cpu_self / elapsed,
            "cpu_us_per_forwarded_packet": us_per_packet,
            "supervisor_cpu_utilisation": (supervisor_cpu2 - supervisor_cpu1) / elapsed,
            "clients_cpu_utilisation": (clients_cpu2 - clients_cpu1) / elapsed,
            "machine_cpu_utilisation": (machine2 - machine1) / elapsed,
            "other_cpu_utilisation": (
                (machine2 - machine1)
                - cpu_proc
                - (supervisor_cpu2 - supervisor_cpu1)
                - (clients_cpu2 - clients_cpu1)
                - (parent2 - parent1)
            )
            / elapsed,
            "loadavg_after": os.getloadavg(),
            "udp_receive_buffer_drops": {k: drops2[k] - drops1[k] for k in drops2},
            "forward_latency_us": latency,
            "worker_rss_bytes": max([w2["rss_bytes"], *rss_samples]),
            "supervisor_rss_bytes": proc_rss_bytes(node.process.pid),
            "subscriber_expected": loss["expected"],
            "subscriber_received": loss["received"],
            "subscriber_loss": loss["loss"],
            "subscriber_worst_slot_loss": loss["worst_slot_loss"],
            "subscriber_slots": loss["slots"],
            "per_slot": loss["per_slot"],
            "publisher_video_packets_per_second": video_packets / elapsed / n,
            "publisher_audio_packets_per_second": 50.0,
            "keyframes_forced": sum(m["keyframes_forced"] for m in marks2),
            "end_to_end_us": {
                "p50": max((s["p50"] for s in e2e), default=0.0),
                "p99": max((s["p99"] for s in e2e), default=0.0),
                "note": "worst client process; includes both clients' event loops",
            },
            "codecs": w2.get("codecs", {}),
            "ratios": {
                "us_per_packet_to_floor": us_per_packet / floor_us,
                "us_per_packet_to_janus": us_per_packet / JANUS_US_PER_PACKET,
                "us_per_packet_to_target": us_per_packet / TARGET_US_PER_PACKET,
                "p99_to_target": latency["p99"] / TARGET_P99_US,
            },
            "targets": {
                "janus_us_per_packet": JANUS_US_PER_PACKET,
                "us_per_packet": TARGET_US_PER_PACKET,
                "p99_us": TARGET_P99_US,
            },
        }
    )
    return result


async def stop(run: Run) -> None:
    """Stop the clients, then the node; whatever does not stop in time is killed."""
    for client in run.clients:
        if client.returncode is None and client.stdin is not None:
            with contextlib.suppress(Exception):
                client.stdin.write(b"stop\n")
                await client.stdin.drain()
    for client in run.clients:
        try:
            await asyncio.wait_for(client.wait(), STOP_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                client.kill()
            await client.wait()
    if run.node is not None:
        await run.node.stop()


def kill_everything(run: Run) -> None:
    """Last resort, by pid: the clients, then the node's workers and the node."""
    for client in run.clients:
        if client.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(client.pid, signal.SIGKILL)
    if run.node is not None:
        run.node.kill()


def table(result: dict[str, Any]) -> str:
    ratios, floor, latency = result["ratios"], result["floor"], result["forward_latency_us"]
    rows = [
        ("meeting", f"{result['participants']} x {result['participants']}, "
                    f"last-N {result['video_slots']}, {result['forwarded_streams']} streams"),
        ("publisher video packets/s", f"{result['publisher_video_packets_per_second']:.0f} "
                                      f"(+ 50 audio)"),
        ("forwarded packets/s", f"{result['forwarded_packets_per_second']:,.0f}"),
        ("worker CPU", f"{100 * result['worker_cpu_utilisation']:.0f} % of one core"),
        ("CPU µs / forwarded packet", f"{result['cpu_us_per_forwarded_packet']:.1f}"),
        ("  floor µs (SRTP + sendto)", f"{floor['floor_us']:.1f} "
                                       f"({floor['srtp_protect_us']:.1f} + "
                                       f"{floor['udp_sendto_us']:.1f})"),
        ("  sendto, reader waiting µs", f"{floor['udp_sendto_to_waiting_reader_us']:.1f}"),
        ("  ratio to floor", f"{ratios['us_per_packet_to_floor']:.2f}x"),
        ("  ratio to Janus (17 µs)", f"{ratios['us_per_packet_to_janus']:.2f}x"),
        ("  ratio to target (8.5 µs)", f"{ratios['us_per_packet_to_target']:.2f}x"),
        ("added latency p50 / p99 µs", f"{latency['p50']:.0f} / {latency['p99']:.0f}"),
        ("  p99 ratio to target (5 ms)", f"{ratios['p99_to_target']:.3f}x"),
        ("end-to-end p50 / p99 µs", f"{result['end_to_end_us']['p50']:.0f} / "
                                    f"{result['end_to_end_us']['p99']:.0f}"),
        ("worker RSS", f"{result['worker_rss_bytes'] / 2**20:.0f} MiB"),
        ("subscriber loss", f"{100 * result['subscriber_loss']:.2f} % "
                            f"(worst slot {100 * result['subscriber_worst_slot_loss']:.2f} %, "
                            f"{result['subscriber_slots']} slots)"),
        ("UDP drops (full rcvbuf)", ", ".join(
            f"{k} {v}" for k, v in result["udp_receive_buffer_drops"].items())),
        ("client processes CPU", f"{100 * result['clients_cpu_utilisation']:.0f} % of one core"),
        ("machine CPU (all cores)", f"{100 * result['machine_cpu_utilisation']:.0f} % of one core, "
                                    f"{100 * result['other_cpu_utilisation']:.0f} % not ours"),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sfu-bench-") as workdir:
        run = Run(args, Path(workdir))
        try:
            result = await asyncio.wait_for(measure(run), args.seconds + HARD_MARGIN)
            if args.profile:
                await asyncio.wait_for(stop(run), 2 * STOP_TIMEOUT + 5)
                result["profile"] = {
                    "note": "cProfile of the whole worker run (join, warm-up, window); "
                    "figures of a --profile run are inflated by the profiler",
                    "top_own_time": profile_summary(run.workdir / "worker.prof"),
                }
            return result
        except BaseException:
            for name in ("node.err", "client-0.err", "client-1.err"):
                text = tail(run.workdir / name)
                if text:
                    print(f"--- {name}\n{text}", file=sys.stderr)
            raise
        finally:
            try:
                await asyncio.wait_for(stop(run), 2 * STOP_TIMEOUT + 5)
            finally:
                kill_everything(run)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.sfu_forwarding", description=__doc__)
    p.add_argument("--participants", type=int, default=10)
    p.add_argument("--seconds", type=float, default=20.0, help="measurement window")
    p.add_argument("--video-slots", type=int, default=9)
    p.add_argument("--client-processes", type=int, default=2)
    p.add_argument("--warmup", type=float, default=4.0, help="seconds after all streams flow")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--bitrate", type=int, default=2_000_000)
    p.add_argument("--floor-packet-bytes", type=int, default=1200)
    p.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not pin the worker to one core and everything else to the others",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="run the node's worker under cProfile (slower) and report its hot functions",
    )
    p.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.participants < 2:
        raise SystemExit("--participants must be at least 2")
    result = asyncio.run(bench(args))
    out = args.out or RESULTS / f"sfu_forwarding-{args.participants}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(table(result))
    print(f"raw numbers: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
