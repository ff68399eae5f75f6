"""The floor of the SFU comparison: a naive aiortc relay that decodes and re-encodes.

    python -m bench.targets.naive_relay --port PORT [--video-slots 9] [--audio-slots 3]

This is the pattern of aiortc's own examples (``aiortc.contrib.media.MediaRelay``): the relay
receives each publisher's tracks, which aiortc **decodes** (one decoder per published track),
and gives each subscriber a proxy of them, which that subscriber's sender **re-encodes** (one
VP8 or Opus encoder per subscriber stream). It speaks the HTTP shape of our node's control API,
so the same load generator drives both:

    POST /v1/publish           {"token", "sdp"}               -> {"sdp": answer}
    POST /v1/subscribe         {"token", "wait_publishers"}   -> {"sdp": offer}
    POST /v1/subscribe/answer  {"token", "sdp"}               -> {}
    GET  /v1/health                                           -> pid, packets, streams

The token is only the participant's name (loopback, a process the bench started). A subscriber
gets the video of the first ``--video-slots`` other publishers in join order (last-N, as our
node) and the audio of the first ``--audio-slots`` (as many audio streams as our node sends).
``wait_publishers`` makes the subscribe wait until that many other publishers are in, since
the offer is made once. The proxies are unbuffered (``buffered=False``: a slow encoder takes
the latest frame, it does not queue them). The VP8 encoders run at ``--bitrate`` (aiortc caps
it at 1.5 Mbit/s), not at aiortc's 500 kbit/s start, since no REMB ever raises it here.

``forwarded_packets`` counts the RTP packets (not RTCP) the relay's DTLS transports sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.load.measure import children_of, free_port, pin, proc_rss_bytes, tail

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
WAIT_PUBLISHERS_TIMEOUT = 60.0


@dataclass
class Publisher:
    name: str
    pc: Any
    tracks: dict[str, Any] = field(default_factory=dict)  # kind -> remote track


@dataclass
class RelayState:
    publishers: dict[str, Publisher] = field(default_factory=dict)  # join order
    subscribers: dict[str, Any] = field(default_factory=dict)  # name -> peer connection
    streams: int = 0
    forwarded_packets: int = 0


def install_counters(state: RelayState, bitrate: int) -> None:
    """Count sent RTP on every DTLS transport; start every VP8 encoder at ``bitrate``."""
    import aiortc.rtcrtpsender
    from aiortc.codecs.vpx import Vp8Encoder
    from aiortc.rtcdtlstransport import RTCDtlsTransport
    from aiortc.rtp import is_rtcp

    send_rtp = RTCDtlsTransport._send_rtp

    async def counted_send_rtp(self: Any, data: bytes) -> None:
        await send_rtp(self, data)
        if not is_rtcp(data):
            state.forwarded_packets += 1

    RTCDtlsTransport._send_rtp = counted_send_rtp  # type: ignore[method-assign]
    original = aiortc.rtcrtpsender.get_encoder

    def get_encoder(codec: Any) -> Any:
        encoder = original(codec)
        if isinstance(encoder, Vp8Encoder):
            encoder.target_bitrate = bitrate
        return encoder

    aiortc.rtcrtpsender.get_encoder = get_encoder


def relay_app(state: RelayState, *, video_slots: int, audio_slots: int) -> Any:
    from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaRelay
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    relay = MediaRelay()
    configuration = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)

    async def body_of(request: Request, *keys: str) -> dict[str, Any]:
        body = await request.json()
        if not isinstance(body, dict) or any(not isinstance(body.get(k), str) for k in keys):
            raise ValueError(f"the body must be a JSON object with strings {keys}")
        return body

    def bad(error: Exception) -> JSONResponse:
        return JSONResponse({"error": {"code": "bad_request", "message": str(error)}}, 400)

    async def publish(request: Request) -> JSONResponse:
        try:
            body = await body_of(request, "token", "sdp")
        except ValueError as error:
            return bad(error)
        name = body["token"]
        pc = RTCPeerConnection(configuration)
        publisher = Publisher(name, pc)

        @pc.on("track")
        def on_track(track: Any) -> None:
            publisher.tracks[track.kind] = track

        await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        state.publishers[name] = publisher
        return JSONResponse({"sdp": pc.localDescription.sdp})

    async def subscribe(request: Request) -> JSONResponse:
        try:
            body = await body_of(request, "token")
            wait_for = int(body.get("wait_publishers", 0))
        except (ValueError, TypeError) as error:
            return bad(error)
        name = body["token"]
        deadline = time.monotonic() + WAIT_PUBLISHERS_TIMEOUT
        while sum(p != name for p in state.publishers) < wait_for:
            if time.monotonic() > deadline:
                return JSONResponse({"error": {"code": "timeout", "message": "publishers"}}, 504)
            await asyncio.sleep(0.1)
        others = [p for n, p in state.publishers.items() if n != name]
        videos = [p.tracks["video"] for p in others if "video" in p.tracks][:video_slots]
        audios = [p.tracks["audio"] for p in others if "audio" in p.tracks][:audio_slots]
        pc = RTCPeerConnection(configuration)
        for track in [*videos, *audios]:
            pc.addTransceiver(relay.subscribe(track, buffered=False), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        old = state.subscribers.pop(name, None)
        if old is not None:
            await old.close()
        state.subscribers[name] = pc
        state.streams = sum(len(s.getSenders()) for s in state.subscribers.values())
        return JSONResponse({"sdp": pc.localDescription.sdp})

    async def subscribe_answer(request: Request) -> JSONResponse:
        try:
            body = await body_of(request, "token", "sdp")
        except ValueError as error:
            return bad(error)
        pc = state.subscribers.get(body["token"])
        if pc is None:
            return JSONResponse({"error": {"code": "not_found", "message": "no subscribe"}}, 404)
        await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], "answer"))
        return JSONResponse({})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "pid": os.getpid(),
                "publishers": len(state.publishers),
                "subscribers": len(state.subscribers),
                "forwarded_streams": state.streams,
                "forwarded_packets": state.forwarded_packets,
                "process_cpu_seconds": time.process_time(),
                "rss_bytes": proc_rss_bytes(os.getpid()),
            }
        )

    return Starlette(
        routes=[
            Route("/v1/publish", publish, methods=["POST"]),
            Route("/v1/subscribe", subscribe, methods=["POST"]),
            Route("/v1/subscribe/answer", subscribe_answer, methods=["POST"]),
            Route("/v1/health", health, methods=["GET"]),
        ]
    )


async def serve(args: argparse.Namespace) -> None:
    import aioice.ice
    import uvicorn

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    state = RelayState()
    install_counters(state, args.bitrate)
    app = relay_app(state, video_slots=args.video_slots, audio_slots=args.audio_slots)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning", lifespan="off")
    )
    try:
        await server.serve()  # until SIGTERM or SIGINT
    finally:
        pcs = [*state.subscribers.values(), *(p.pc for p in state.publishers.values())]
        for pc in pcs:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pc.close(), 2)


class NaiveRelay:
    """The relay as a benchmark target: its own process, on 127.0.0.1."""

    def __init__(
        self, *, workdir: Path, video_slots: int = 9, audio_slots: int = 3, bitrate: int
    ) -> None:
        self.workdir = workdir
        self.video_slots = video_slots
        self.audio_slots = audio_slots
        self.bitrate = bitrate
        self.url = ""
        self.process: asyncio.subprocess.Process | None = None
        self.err = workdir / "naive.err"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the relay is not running (call start() first)")
        return self.process.pid

    def token(self, meeting: str, participant: str, *, may_publish: bool) -> str:
        return participant

    def http(self, timeout: float = 5.0) -> Any:
        import httpx

        return httpx.AsyncClient(timeout=timeout, trust_env=False)

    async def health(self, http: Any) -> dict[str, Any]:
        answer = await http.get(f"{self.url}/v1/health")
        answer.raise_for_status()
        return dict(answer.json())

    async def start(self, cpus: set[int] | None = None) -> None:
        import httpx

        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT)])}
        argv = [
            sys.executable, "-m", "bench.targets.naive_relay",
            "--port", str(port),
            "--video-slots", str(self.video_slots),
            "--audio-slots", str(self.audio_slots),
            "--bitrate", str(self.bitrate),
        ]  # fmt: skip
        if cpus:
            argv += ["--cpus", ",".join(map(str, sorted(cpus)))]
        self.process = await asyncio.create_subprocess_exec(
            *argv, cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=self.err.open("wb")
        )
        started = time.monotonic()
        async with self.http() as http:
            while time.monotonic() - started < START_TIMEOUT:
                if self.process.returncode is not None:
                    raise RuntimeError("the naive relay exited at start: " + tail(self.err))
                with contextlib.suppress(httpx.HTTPError):
                    await self.health(http)
                    return
                await asyncio.sleep(0.2)
        raise RuntimeError("the naive relay did not answer in time: " + tail(self.err))

    async def stop(self) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                self.kill()
                await process.wait()

    def kill(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        for pid in [*children_of(process.pid), process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.targets.naive_relay", description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--video-slots", type=int, default=9)
    p.add_argument("--audio-slots", type=int, default=3)
    p.add_argument("--bitrate", type=int, default=1_500_000)
    p.add_argument("--cpus", default="", help="pin the relay (and its encoder threads) here")
    args = p.parse_args(argv)
    if args.cpus:
        pin(os.getpid(), {int(c) for c in args.cpus.split(",")})
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
