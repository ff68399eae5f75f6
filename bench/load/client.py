"""A load-generator process: headless aiortc participants that publish and count what they get.

    python -m bench.load.client SPEC.json

The parent writes the spec (target, url, clip, participants, deadline, cpus) and talks to the
process over stdin/stdout, one JSON line each way: ``joined`` once every participant is in,
then ``mark`` (stdin) -> a snapshot of the counters (stdout), and ``stop`` (or EOF) -> close.

- **Publishers** replay the pre-encoded VP8 clip (:mod:`bench.load.clip`) and send Opus on a
  square tone whose amplitude depends on the participant (stable audio levels and speaker).
- **Subscribers never decode.** Every DTLS transport of this process hands its RTP to a
  counter instead of aiortc's parser (:func:`bench.load.rtp_counting.install_raw_rtp_counter`:
  from the clear RTP header; only the video marker packets, which carry the send-time stamp,
  are unprotected). The hook is installed on the class, so it works whatever the join path of
  the target (our node, the naive relay, Janus).
- **The join is per target.** ``ours`` and ``naive`` speak the node's control API
  (``/v1/publish`` -> answer, ``/v1/subscribe`` -> offer, ``/v1/subscribe/answer``); ``janus``
  uses ``bench.targets.janus_client.join_janus`` against the VideoRoom plugin.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.load.clip import ReplayCounters, install_replay_encoder, read_clip
from bench.load.measure import e2e_summary, pin, renice
from bench.load.rtp_counting import RawRtpCounts, install_raw_rtp_counter
from bench.targets.janus_client import join_janus


@dataclass
class ClientState:
    """What this process counts; each ``mark`` reports it."""

    rtp: RawRtpCounts = field(default_factory=RawRtpCounts)
    replay: ReplayCounters = field(default_factory=ReplayCounters)


STATE = ClientState()


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def snapshot(state: ClientState) -> dict[str, Any]:
    samples, state.rtp.e2e_us = state.rtp.e2e_us, []
    counters = state.rtp.counters
    return {
        "event": "mark",
        "slots": {k: [c.received, c.highest] for k, c in counters.items()},
        "video_frames": {k: c.frames for k, c in counters.items() if k.endswith("video")},
        "e2e_us": e2e_summary(samples),
        "video_frames_sent": state.replay.video_frames_sent,
        "video_packets_sent": state.replay.video_packets_sent,
        "keyframes_forced": state.replay.keyframes_forced,
        "cpu_seconds": time.process_time(),
    }


async def run_client(spec: dict[str, Any]) -> None:
    if spec.get("cpus"):
        pin(os.getpid(), set(spec["cpus"]))
    if spec.get("nice"):
        renice(os.getpid(), int(spec["nice"]))
    import aioice.ice
    import httpx
    from aiortc import (
        RTCBundlePolicy,
        RTCConfiguration,
        RTCPeerConnection,
        RTCSessionDescription,
    )

    target = spec.get("target", "ours")
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    install_replay_encoder(read_clip(Path(spec["clip"])), STATE.replay, stamp=target != "naive")
    install_raw_rtp_counter(STATE.rtp, stamps=target != "naive")
    fps = int(spec["fps"])
    configuration = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)

    from bench.load.tracks import PacedTrack, ToneTrack

    pcs: list[RTCPeerConnection] = []
    sessions: list[Any] = []
    url = spec["url"]

    def publisher(participant: dict[str, Any]) -> RTCPeerConnection | None:
        if not (participant.get("audio", True) or participant.get("video", True)):
            return None
        pc = RTCPeerConnection(configuration)
        pcs.append(pc)
        if participant.get("audio", True):
            pc.addTrack(ToneTrack(1000 + 1000 * (participant["index"] % 30)))
        if participant.get("video", True):
            pc.addTrack(PacedTrack(fps))
        return pc

    async def publish_control_api(http: httpx.AsyncClient, participant: dict[str, Any]) -> None:
        pc = publisher(participant)
        if pc is None:
            return
        await pc.setLocalDescription(await pc.createOffer())
        answer = await http.post(
            f"{url}/v1/publish",
            json={"token": participant["token"], "sdp": pc.localDescription.sdp},
        )
        answer.raise_for_status()
        await pc.setRemoteDescription(RTCSessionDescription(answer.json()["sdp"], "answer"))

    async def subscribe_control_api(http: httpx.AsyncClient, participant: dict[str, Any]) -> None:
        if not participant.get("subscribe", True):
            return
        pc = RTCPeerConnection(configuration)
        pcs.append(pc)
        body: dict[str, Any] = {"token": participant["token"]}
        if target == "naive":
            body["wait_publishers"] = participant.get("wait_publishers", 0)
        offer = await http.post(f"{url}/v1/subscribe", json=body)
        offer.raise_for_status()
        await pc.setRemoteDescription(RTCSessionDescription(offer.json()["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        answered = await http.post(
            f"{url}/v1/subscribe/answer",
            json={"token": participant["token"], "sdp": pc.localDescription.sdp},
        )
        answered.raise_for_status()

    async def join_janus_participant(http: httpx.AsyncClient, participant: dict[str, Any]) -> None:
        subscribe = None
        if participant.get("subscribe", True):
            subscribe = RTCPeerConnection(configuration)
            pcs.append(subscribe)
        session = await join_janus(
            http,
            url,
            int(spec["room"]),
            display=f"p{participant['index']:03d}",
            publish=publisher(participant),
            subscribe=subscribe,
            video_feeds=int(participant.get("video_feeds", 0)),
            audio_feeds=int(participant.get("audio_feeds", 0)),
            wait_publishers=int(participant.get("wait_publishers", 0)),
            timeout=float(spec.get("join_timeout", 60.0)),
        )
        sessions.append(session)

    async def each(
        participants: list[dict[str, Any]],
        step: Callable[[httpx.AsyncClient, dict[str, Any]], Awaitable[None]],
        http: httpx.AsyncClient,
        concurrency: int,
    ) -> None:
        gate = asyncio.Semaphore(max(1, concurrency))

        async def one(participant: dict[str, Any]) -> None:
            async with gate:
                await step(http, participant)

        await asyncio.gather(*(one(p) for p in participants))

    participants: list[dict[str, Any]] = spec["participants"]
    concurrency = int(spec.get("join_concurrency", 1))
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + float(spec["deadline_seconds"])
    try:
        # Our node's front speaks TLS with its own certificate: trust that one only.
        verify: Any = (
            ssl.create_default_context(cafile=spec["cafile"]) if spec.get("cafile") else True
        )
        # Every Janus session holds one long poll open, on top of its requests: the default
        # pool of 100 connections would stall joins past about 90 participants per process.
        limits = httpx.Limits(max_connections=4 * len(participants) + 20)
        async with httpx.AsyncClient(
            timeout=60.0, trust_env=False, verify=verify, limits=limits
        ) as http:
            if target == "janus":
                # A Janus join publishes and subscribes in one call and waits for the room's
                # publishers, so every publisher joins at once; listeners follow, gated.
                publishing = [p for p in participants if p.get("audio") or p.get("video")]
                listening = [p for p in participants if p not in publishing]
                await each(publishing, join_janus_participant, http, len(publishing))
                await each(listening, join_janus_participant, http, concurrency)
            elif concurrency <= 1:
                for participant in participants:  # as the forwarding bench always did
                    await publish_control_api(http, participant)
                    await subscribe_control_api(http, participant)
            else:
                await each(participants, publish_control_api, http, concurrency)
                await each(participants, subscribe_control_api, http, concurrency)
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
                emit(snapshot(STATE))
            elif command in ("stop", ""):  # "" is EOF: the parent is gone
                break
    finally:
        for session in sessions:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(session.close(), 5)
        for pc in pcs:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pc.close(), 5)
        emit({"event": "stopped"})


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m bench.load.client SPEC.json")
    asyncio.run(run_client(json.loads(Path(args[0]).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
