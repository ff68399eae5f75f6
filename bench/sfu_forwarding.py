"""SFU forwarding benchmark: an N x N meeting through a real node process, on loopback.

    PYTHONPATH=functions:. .venv/bin/python -m bench.sfu_forwarding [--participants 10]
        [--seconds 20] [--video-slots 9] [--client-processes 2]

One command, bounded in time (about 1 minute at the defaults; a hard deadline kills everything
after ``--seconds`` + 150 s). It starts, on 127.0.0.1 only:

- a node (``python -m media_fleet --workers 1 --ice-host 127.0.0.1``) with a temporary JWKS,
  its worker pinned to the first CPU and everything else to the others (``--no-pin``: not);
- ``--client-processes`` headless aiortc client processes (``--client`` mode of this module),
  which share the participants. Each participant publishes audio and camera and subscribes.

Publishers send **pre-encoded VP8**: the parent encodes a 2 s clip once (noise frames, so the
rate controller spends the whole bitrate; a keyframe every 2 s), and each client process
replaces ``aiortc.rtcrtpsender.get_encoder`` (in its own process only) with
:class:`ReplayEncoder`, which returns the stored frames in a loop, packetized by aiortc's own
VP8 packetizer. A keyframe request (PLI from the node) makes the replay jump to the clip's
keyframe. The last 8 bytes of each frame are overwritten with a monotonic send time, which
the subscribers read back for an end-to-end latency. Audio is aiortc's Opus encoder on a
constant square tone (a distinct amplitude per participant, so the audio-level extension
ranks them and the active speaker is stable).

Subscribers never decode: each subscribe receiver's RTP handler is replaced by a counter
(sequence gaps per slot = loss; no jitter buffer, no NACK, so no RTX hides a loss).

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
import re
import secrets
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
MEETING = "bench-meeting"
JANUS_US_PER_PACKET = 17.0
"Janus 1.1.2 on this kind of machine (issue 5): the reference for the target."
TARGET_US_PER_PACKET = 0.5 * JANUS_US_PER_PACKET
TARGET_P99_US = 5000.0
STAMP = struct.Struct("!Q")
CLIP_SECONDS = 2.0
NODE_START_TIMEOUT = 30.0
JOIN_TIMEOUT = 90.0
STREAMS_TIMEOUT = 40.0
STOP_TIMEOUT = 15.0
HARD_MARGIN = 150.0
"Seconds on top of --seconds after which everything is killed, whatever the state."


# --- the pre-encoded clip -----------------------------------------------------------------


def encode_clip(
    path: Path, *, width: int, height: int, fps: int, bitrate: int, seconds: float
) -> dict[str, Any]:
    """Encode a moving pattern to VP8 once (a keyframe first, none after) into ``path``.

    The pattern is a diagonal gradient sliding 8 pixels a frame, with 3 bits of noise XORed
    in, so that libvpx's CBR at ``bitrate`` spends about its budget on every frame. The file
    is a sequence of ``(u32 length, u8 keyframe, bytes)`` records; replayed in a loop, the
    clip gives a keyframe every ``seconds``.
    """
    import av

    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.bit_rate = bitrate
    codec.framerate = Fraction(fps)
    codec.time_base = Fraction(1, fps)
    count = int(fps * seconds)
    codec.gop_size = count
    codec.qmin, codec.qmax = 2, 56
    codec.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "minrate": str(bitrate),
        "maxrate": str(bitrate),
        "bufsize": str(bitrate),
        "undershoot-pct": "95",
        "overshoot-pct": "5",
    }
    row = bytes((x * 3) & 0xFF for x in range(width + 2 * height + 8 * count))
    grey = bytes([128]) * (width * height // 4)
    frames: list[tuple[bytes, bool]] = []
    for index in range(count + 1):
        if index < count:
            luma = b"".join(
                row[2 * r + 8 * index : 2 * r + 8 * index + width] for r in range(height)
            )
            noise = bytes(b & 7 for b in os.urandom(width * height))
            mixed = int.from_bytes(luma) ^ int.from_bytes(noise)
            frame = av.VideoFrame(width=width, height=height, format="yuv420p")
            frame.planes[0].update(mixed.to_bytes(width * height))
            frame.planes[1].update(grey)
            frame.planes[2].update(grey)
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            packets = codec.encode(frame)
        else:
            packets = codec.encode(None)  # flush (lag-in-frames 0 holds nothing back)
        for packet in packets:
            frames.append((bytes(packet), bool(packet.is_keyframe)))
    frames = frames[:count]
    with path.open("wb") as out:
        for data, key in frames:
            out.write(struct.pack("!IB", len(data), key) + data)
    from aiortc.codecs.vpx import Vp8Encoder

    sizes = [len(data) for data, _ in frames]
    packets_per_frame = [len(Vp8Encoder._packetize(data, 0)) for data, _ in frames]
    return {
        "frames": len(frames),
        "keyframes": sum(key for _, key in frames),
        "mean_frame_bytes": statistics.mean(sizes),
        "keyframe_bytes": [len(d) for d, k in frames if k],
        "mean_packets_per_frame": statistics.mean(packets_per_frame),
        "packets_per_second": statistics.mean(packets_per_frame) * fps,
    }


def read_clip(path: Path) -> list[tuple[bytes, bool]]:
    data = path.read_bytes()
    frames, position = [], 0
    while position < len(data):
        length, key = struct.unpack_from("!IB", data, position)
        position += 5
        frames.append((data[position : position + length], bool(key)))
        position += length
    return frames


# --- the Python per-packet floor, in this run ------------------------------------------------


def measure_floor(packet_size: int, count: int = 20000) -> dict[str, Any]:
    """µs per packet of SRTP protect (aiortc's preferred profile, pylibsrtp) and of a loopback
    UDP ``sendto`` of a packet that size, timed on this machine now (before any load)."""
    from aiortc.rtcdtlstransport import SRTP_PROFILES
    from pylibsrtp import Policy, Session

    profile = SRTP_PROFILES[0]
    policy = Policy(
        key=os.urandom(profile.key_length + profile.salt_length),
        ssrc_type=Policy.SSRC_ANY_OUTBOUND,
        srtp_profile=profile.libsrtp_profile,
    )
    session = Session(policy)
    payload = os.urandom(packet_size - 12)
    plain = [
        struct.pack("!BBHII", 0x80, 96, sequence & 0xFFFF, sequence * 3000, 0x1234) + payload
        for sequence in range(count)
    ]
    started = time.perf_counter()
    protected = [session.protect(packet) for packet in plain]
    protect_us = (time.perf_counter() - started) * 1e6 / count

    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        receiver.bind(("127.0.0.1", 0))
        receiver.setblocking(False)
        address = receiver.getsockname()
        batch, spent = 100, 0.0
        for start in range(0, count, batch):
            chunk = protected[start : start + batch]
            began = time.perf_counter()
            for packet in chunk:
                sender.sendto(packet, address)
            spent += time.perf_counter() - began
            with contextlib.suppress(BlockingIOError):
                for _ in range(batch):  # drain, untimed, so no send meets a full buffer
                    receiver.recv(2048)
        sendto_us = spent * 1e6 / count
    finally:
        receiver.close()
        sender.close()
    return {
        "packet_bytes": packet_size,
        "srtp_profile": profile.openssl_profile.decode(),
        "srtp_protect_us": protect_us,
        "udp_sendto_us": sendto_us,
        "floor_us": protect_us + sendto_us,
        "udp_sendto_to_waiting_reader_us": sendto_to_waiting_reader(protected[:2000]),
    }


READER = """\
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
s.settimeout(5)
try:
    while s.recv(2048) != b"stop":
        pass
except TimeoutError:
    pass
"""


def sendto_to_waiting_reader(packets: list[bytes], gap_s: float = 0.0005) -> float:
    """µs per loopback ``sendto`` when another process is blocked in ``recv`` on the socket
    (paced, so that each datagram wakes it up), as the node's sends to its subscribers do."""
    reader = subprocess.Popen(
        [sys.executable, "-c", READER], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        assert reader.stdout is not None
        address = ("127.0.0.1", int(reader.stdout.readline()))
        spent = 0.0
        for packet in packets:
            time.sleep(gap_s)
            began = time.perf_counter()
            sender.sendto(packet, address)
            spent += time.perf_counter() - began
        sender.sendto(b"stop", address)
        reader.wait(5)
        return spent * 1e6 / len(packets)
    finally:
        sender.close()
        if reader.poll() is None:
            reader.kill()
            reader.wait()


# --- client process -------------------------------------------------------------------------


@dataclass
class SlotCounter:
    """One subscriber slot (its SSRC): packets received and the extended highest sequence."""

    received: int = 0
    highest: int | None = None

    def add(self, sequence: int) -> None:
        self.received += 1
        if self.highest is None:
            self.highest = sequence
            return
        delta = (sequence - self.highest) & 0xFFFF
        if delta < 0x8000:  # newer (a late packet counts as received, not as a new high)
            self.highest += delta


@dataclass
class ClientState:
    counters: dict[str, SlotCounter] = field(default_factory=dict)
    e2e_us: list[float] = field(default_factory=list)
    video_frames_sent: int = 0
    video_packets_sent: int = 0
    keyframes_forced: int = 0


STATE = ClientState()


def install_replay_encoder(frames: list[tuple[bytes, bool]]) -> None:
    """In this (client) process only: every VP8 sender replays ``frames``."""
    import aiortc.rtcrtpsender
    from aiortc.codecs.base import Encoder
    from aiortc.codecs.vpx import Vp8Encoder

    keyframe_index = next((i for i, (_, key) in enumerate(frames) if key), 0)
    original = aiortc.rtcrtpsender.get_encoder

    class ReplayEncoder(Encoder):
        """Returns the stored frames in a loop; a forced keyframe jumps to the keyframe."""

        def __init__(self) -> None:
            self.position = secrets.randbelow(len(frames))
            while not frames[self.position][1]:  # start on a keyframe
                self.position = (self.position + 1) % len(frames)
            self.picture_id = secrets.randbelow(1 << 15)
            self.target_bitrate = 0  # aiortc sets it from REMB; a replay ignores it

        def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
            if force_keyframe:
                self.position = keyframe_index
                STATE.keyframes_forced += 1
            data = frames[self.position][0]
            self.position = (self.position + 1) % len(frames)
            data = data[: -STAMP.size] + STAMP.pack(time.monotonic_ns())
            payloads = Vp8Encoder._packetize(data, self.picture_id)
            self.picture_id = (self.picture_id + 1) % (1 << 15)
            STATE.video_frames_sent += 1
            STATE.video_packets_sent += len(payloads)
            return payloads, int(frame.pts * 90000 * frame.time_base)

        def pack(self, packet: Any) -> tuple[list[bytes], int]:
            raise NotImplementedError

    def get_encoder(codec: Any) -> Encoder:
        if codec.mimeType.lower() == "video/vp8":
            return ReplayEncoder()
        return original(codec)

    aiortc.rtcrtpsender.get_encoder = get_encoder


async def run_client(spec: dict[str, Any]) -> None:
    if spec.get("cpus"):
        pin(os.getpid(), set(spec["cpus"]))
    import aioice.ice
    import httpx
    from aiortc import (
        AudioStreamTrack,
        RTCBundlePolicy,
        RTCConfiguration,
        RTCPeerConnection,
        RTCSessionDescription,
        VideoStreamTrack,
    )
    from av import AudioFrame, VideoFrame

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    install_replay_encoder(read_clip(Path(spec["clip"])))
    fps = int(spec["fps"])
    configuration = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)

    class ToneTrack(AudioStreamTrack):
        def __init__(self, amplitude: int) -> None:
            super().__init__()
            half = struct.pack("<4h", *[amplitude] * 4) + struct.pack("<4h", *[-amplitude] * 4)
            self.samples = half * 1000

        async def recv(self) -> AudioFrame:
            frame = await super().recv()
            assert isinstance(frame, AudioFrame)
            plane = frame.planes[0]
            plane.update(self.samples[: plane.buffer_size])
            return frame

    class ClipTrack(VideoStreamTrack):
        """Paced frames for the replay encoder, which ignores their pixels."""

        def __init__(self) -> None:
            super().__init__()
            self.frame = VideoFrame(width=16, height=16, format="yuv420p")
            self.started: float | None = None
            self.index = 0

        async def recv(self) -> VideoFrame:
            now = time.monotonic()
            if self.started is None:
                self.started = now
            else:
                self.index += 1
                wait = self.started + self.index / fps - now
                if wait > 0:
                    await asyncio.sleep(wait)
            frame = VideoFrame(width=16, height=16, format="yuv420p")
            frame.pts = self.index
            frame.time_base = Fraction(1, fps)
            return frame

    pcs: list[RTCPeerConnection] = []

    def count_raw_rtp(index: int, subscribe: RTCPeerConnection) -> None:
        """Count the subscribe connection's RTP from the packet headers, before aiortc parses.

        The RTP header is not encrypted by SRTP, so the sequence number, SSRC, payload type
        and marker are read from the protected datagram. Only the video marker packets, which
        carry the send-time stamp at the end of the frame, are SRTP-unprotected. Everything
        after that (RTP parsing, routing, jitter buffer, NACK, decoder) never runs: a
        subscriber process costs a few µs per packet instead of tens.
        """
        sdp = subscribe.localDescription.sdp
        video = {int(pt) for pt in re.findall(r"a=rtpmap:(\d+) VP8/90000", sdp)}
        audio = {int(pt) for pt in re.findall(r"a=rtpmap:(\d+) opus/48000", sdp)}
        transport = subscribe.getTransceivers()[0].receiver.transport
        setup_srtp = transport._setup_srtp
        stamped = {0x80 | pt for pt in video}  # marker bit + a video payload type

        class StampOnly:
            def __init__(self, session: Any) -> None:
                self.session = session

            def unprotect_rtcp(self, data: bytes) -> bytes:
                return bytes(self.session.unprotect_rtcp(data))

            def unprotect(self, data: bytes) -> bytes:
                return bytes(self.session.unprotect(data)) if data[1] in stamped else data

        def setup() -> None:
            setup_srtp()
            setattr(transport, "_rx_srtp", StampOnly(transport._rx_srtp))  # noqa: B010

        counters: dict[int, SlotCounter] = {}

        async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
            payload_type = data[1] & 0x7F
            if payload_type in video:
                kind = "video"
            elif payload_type in audio:
                kind = "audio"
            else:
                return  # RTX (none expected: no NACK is ever sent) or anything else
            ssrc = int.from_bytes(data[8:12])
            counter = counters.get(ssrc)
            if counter is None:
                counter = counters[ssrc] = STATE.counters[f"{index}/{ssrc}/{kind}"] = SlotCounter()
            counter.add((data[2] << 8) | data[3])
            if data[1] in stamped and len(data) > 40:
                (stamp,) = STAMP.unpack_from(data, len(data) - STAMP.size)
                elapsed = (time.monotonic_ns() - stamp) / 1000
                if 0 < elapsed < 10e6:
                    STATE.e2e_us.append(elapsed)

        setattr(transport, "_setup_srtp", setup)  # noqa: B010
        setattr(transport, "_handle_rtp_data", handle_rtp_data)  # noqa: B010

    async def join(http: httpx.AsyncClient, index: int, token: str) -> None:
        url = spec["url"]
        publish = RTCPeerConnection(configuration)
        subscribe = RTCPeerConnection(configuration)
        pcs.extend((publish, subscribe))
        publish.addTrack(ToneTrack(1000 + 1000 * index))
        publish.addTrack(ClipTrack())
        await publish.setLocalDescription(await publish.createOffer())
        answer = await http.post(
            f"{url}/v1/publish", json={"token": token, "sdp": publish.localDescription.sdp}
        )
        answer.raise_for_status()
        await publish.setRemoteDescription(RTCSessionDescription(answer.json()["sdp"], "answer"))

        offer = await http.post(f"{url}/v1/subscribe", json={"token": token})
        offer.raise_for_status()
        await subscribe.setRemoteDescription(RTCSessionDescription(offer.json()["sdp"], "offer"))
        await subscribe.setLocalDescription(await subscribe.createAnswer())
        count_raw_rtp(index, subscribe)
        answered = await http.post(
            f"{url}/v1/subscribe/answer",
            json={"token": token, "sdp": subscribe.localDescription.sdp},
        )
        answered.raise_for_status()

    def emit(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    def snapshot() -> dict[str, Any]:
        samples, STATE.e2e_us = STATE.e2e_us, []
        return {
            "event": "mark",
            "slots": {k: [c.received, c.highest] for k, c in STATE.counters.items()},
            "e2e_us": e2e_summary(samples),
            "video_frames_sent": STATE.video_frames_sent,
            "video_packets_sent": STATE.video_packets_sent,
            "keyframes_forced": STATE.keyframes_forced,
            "cpu_seconds": time.process_time(),
        }

    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + float(spec["deadline_seconds"])
    try:
        async with httpx.AsyncClient(timeout=30.0, trust_env=False) as http:
            for index, token in spec["participants"]:
                await join(http, index, token)
        emit({"event": "joined"})
        while time.monotonic() < deadline:
            remaining = deadline - time.monotonic()
            try:
                line = await asyncio.wait_for(
                    loop.run_in_executor(None, sys.stdin.readline), remaining
                )
            except TimeoutError:
                break
            command = line.strip()
            if command == "mark":
                emit(snapshot())
            elif command in ("stop", ""):  # "" is EOF: the parent is gone
                break
    finally:
        for pc in pcs:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pc.close(), 5)
        emit({"event": "stopped"})


def e2e_summary(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"count": 0, "p50": 0.0, "p99": 0.0}
    ordered = sorted(samples)
    return {
        "count": len(ordered),
        "p50": ordered[len(ordered) // 2],
        "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
    }


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


def pin(pid: int, cpus: set[int]) -> None:
    """Pin every thread of a process to ``cpus`` (threads started later inherit it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(task.name), cpus)


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def udp_receive_drops(pids: dict[str, list[int]]) -> dict[str, int]:
    """Datagrams the kernel dropped for full receive buffers: machine-wide (/proc/net/snmp
    RcvbufErrors) and per group of our processes (the ``drops`` column of /proc/net/udp for
    the sockets those processes hold)."""
    lines = Path("/proc/net/snmp").read_text().splitlines()
    udp = [line.split() for line in lines if line.startswith("Udp:")]
    drops = {"machine": int(udp[1][udp[0].index("RcvbufErrors")])}
    by_inode: dict[int, int] = {}
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        by_inode[int(fields[9])] = int(fields[12])
    for name, group in pids.items():
        total = 0
        for pid in group:
            with contextlib.suppress(OSError):
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    with contextlib.suppress(OSError):
                        target = os.readlink(fd)
                        if target.startswith("socket:["):
                            total += by_inode.get(int(target[8:-1]), 0)
        drops[name] = total
    return drops


def proc_rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


@dataclass
class Run:
    args: argparse.Namespace
    workdir: Path
    node: asyncio.subprocess.Process | None = None
    clients: list[asyncio.subprocess.Process] = field(default_factory=list)
    url: str = ""


async def read_event(process: asyncio.subprocess.Process, within: float) -> dict[str, Any]:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), within)
    if not line:
        raise RuntimeError("a client process ended early (see its stderr in the output)")
    return dict(json.loads(line))


async def health(http: Any, url: str) -> dict[str, Any]:
    answer = await http.get(f"{url}/v1/health")
    answer.raise_for_status()
    return dict(answer.json())


def histogram_delta(before: dict[str, Any], after: dict[str, Any]) -> list[int]:
    from media_fleet.sfu.room import ForwardingStats

    counts = [0] * ForwardingStats.BUCKETS
    for index, count in after.get("forward_latency_histogram", []):
        counts[index] += count
    for index, count in before.get("forward_latency_histogram", []):
        counts[index] -= count
    return counts


async def measure(run: Run) -> dict[str, Any]:
    import httpx
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from media_fleet.sfu.room import latency_summary
    from townhall.auth.keys import SigningKey
    from townhall.media.jwks import jwks
    from townhall.media.tokens import MediaTokenService

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

    key = SigningKey.from_private_key(Ed25519PrivateKey.generate())
    jwks_file = run.workdir / "jwks.json"
    jwks_file.write_text(json.dumps(jwks(key)))
    tokens = MediaTokenService(key)
    node_id = f"bench-{secrets.token_hex(4)}"
    port = free_port()
    run.url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT)])}
    node_env = dict(env)
    if args.profile:
        hook = run.workdir / "profile-hook"
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(PROFILE_HOOK)
        node_env["PYTHONPATH"] = os.pathsep.join([str(hook), env["PYTHONPATH"]])
        node_env["BENCH_PROFILE_OUT"] = str(run.workdir / "worker.prof")
    node_err = (run.workdir / "node.err").open("wb")
    run.node = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "media_fleet",
        "--node-id", node_id,
        "--control-host", "127.0.0.1",
        "--control-port", str(port),
        "--jwks", str(jwks_file),
        "--workers", "1",
        "--ice-host", "127.0.0.1",
        "--video-slots", str(args.video_slots),
        "--drain-deadline", "3",
        cwd=ROOT, env=node_env, stdout=asyncio.subprocess.DEVNULL, stderr=node_err,
    )  # fmt: skip

    async with httpx.AsyncClient(timeout=5.0, trust_env=False) as http:
        started = time.monotonic()
        node_health: dict[str, Any] | None = None
        while time.monotonic() - started < NODE_START_TIMEOUT:
            if run.node.returncode is not None:
                raise RuntimeError("the node exited at start: " + tail(run.workdir / "node.err"))
            with contextlib.suppress(httpx.HTTPError):
                node_health = await health(http, run.url)
                if node_health["workers"] and "pid" in node_health["workers"][0]:
                    break
            await asyncio.sleep(0.2)
        else:
            raise RuntimeError("the node did not answer /v1/health in time")
        assert node_health is not None
        worker_pid = int(node_health["workers"][0]["pid"])
        cpus = sorted(os.sched_getaffinity(0))
        pinning: dict[str, list[int]] = {}
        if args.pin and len(cpus) >= 2:
            # The worker owns one core (as on a node: one worker per core); the load
            # generator, the supervisor and this process share the others.
            pinning = {"worker": cpus[:1], "rest": cpus[1:]}
            pin(worker_pid, set(pinning["worker"]))
            pin(run.node.pid, set(pinning["rest"]))
            pin(os.getpid(), set(pinning["rest"]))
        result["cpu_pinning"] = pinning

        # The floor, on this machine, now (node idle, no clients yet).
        result["floor"] = measure_floor(args.floor_packet_bytes)
        print(f"floor: {result['floor']}", flush=True)

        # Clients: participants dealt round-robin over the client processes.
        processes = max(1, min(args.client_processes, n))
        shares: list[list[tuple[int, str]]] = [[] for _ in range(processes)]
        for index in range(n):
            token = tokens.issue(MEETING, f"p{index:03d}", node_id, may_publish=True)[0]
            shares[index % processes].append((index, token))
        deadline_seconds = args.seconds + HARD_MARGIN
        for number, share in enumerate(shares):
            spec_file = run.workdir / f"client-{number}.json"
            spec = {
                "url": run.url,
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
                    "bench.sfu_forwarding",
                    "--client",
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
            node_health = await health(http, run.url)
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
            node = await health(http, run.url)
            marks = [await read_event(client, 20.0) for client in run.clients]
            return marks, node, now, cpu

        groups = {"node": [worker_pid], "clients": [c.pid for c in run.clients]}
        drops1 = udp_receive_drops(groups)
        marks1, health1, t1, cpu1 = await mark()
        machine1, parent1 = machine_busy_seconds(), time.process_time()
        supervisor_cpu1 = proc_cpu_seconds(run.node.pid)
        clients_cpu1 = sum(m["cpu_seconds"] for m in marks1)
        rss_samples, pps_samples = [], []
        end = t1 + args.seconds
        while time.monotonic() < end:
            await asyncio.sleep(min(2.0, max(0.0, end - time.monotonic())))
            sample = await health(http, run.url)
            rss_samples.append(proc_rss_bytes(worker_pid))
            pps_samples.append(sample["packets_per_second"])
        marks2, health2, t2, cpu2 = await mark()
        machine2, parent2 = machine_busy_seconds(), time.process_time()
        drops2 = udp_receive_drops(groups)
        supervisor_cpu2 = proc_cpu_seconds(run.node.pid)
        clients_cpu2 = sum(m["cpu_seconds"] for m in marks2)

    elapsed = t2 - t1
    w1, w2 = health1["workers"][0], health2["workers"][0]
    forwarded = w2["forwarded_packets"] - w1["forwarded_packets"]
    cpu_proc = cpu2 - cpu1
    cpu_self = w2["process_cpu_seconds"] - w1["process_cpu_seconds"]
    us_per_packet = cpu_self * 1e6 / forwarded if forwarded else float("nan")
    latency = latency_summary(histogram_delta(w1, w2))

    expected = received = 0
    worst = 0.0
    per_slot: dict[str, dict[str, int]] = {}
    for first, second in zip(marks1, marks2, strict=True):
        for slot, (got2, high2) in second["slots"].items():
            got1, high1 = first["slots"].get(slot, [0, None])
            if high1 is None or high2 is None:
                continue
            slot_expected, slot_received = high2 - high1, got2 - got1
            per_slot[slot] = {"expected": slot_expected, "received": slot_received}
            expected += slot_expected
            received += slot_received
            if slot_expected > 0:
                worst = max(worst, 1 - slot_received / slot_expected)
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
            "supervisor_rss_bytes": proc_rss_bytes(run.node.pid),
            "subscriber_expected": expected,
            "subscriber_received": received,
            "subscriber_loss": 1 - received / expected if expected else float("nan"),
            "subscriber_worst_slot_loss": worst,
            "subscriber_slots": len(per_slot),
            "per_slot": per_slot,
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


def tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


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
    node = run.node
    if node is not None and node.returncode is None:
        node.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(node.wait(), STOP_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                node.kill()
            await node.wait()


def kill_everything(run: Run) -> None:
    """Last resort, by pid: the clients, the node's workers (its children), the node."""
    pids = [c.pid for c in run.clients if c.returncode is None]
    if run.node is not None and run.node.returncode is None:
        pids += [*children_of(run.node.pid), run.node.pid]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry.name))
    return found


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
    p.add_argument("--client", type=Path, default=None, help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.client is not None:
        asyncio.run(run_client(json.loads(args.client.read_text())))
        return 0
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
