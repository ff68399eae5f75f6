"""Janus Gateway 1.1.2 VideoRoom as a reference target of the SFU benchmark (issue 5).

Parent side, :class:`JanusServer`: renders a configuration into a work directory
(``janus_config``), creates a private network namespace ``thbench-<pid>``, starts Janus in it
(pinned if asked), waits until its HTTP API answers and the room is there, and tears it all
down. Client side, :func:`join_janus`: one participant over the Janus HTTP API (a session with
a long-poll task and a keepalive task), publishing on one aiortc peer connection and receiving
other publishers' streams on one multistream subscriber connection.

Why a namespace: Janus never gathers ICE candidates on an interface flagged LOOPBACK, so it
cannot use ``lo`` directly. In the namespace, 127.0.0.1/32 also sits on one end of a veth pair
whose both ends stay inside; Janus gathers 127.0.0.1 there, and the kernel still carries the
traffic over ``lo`` (the veth counters stay at 0). See docs/bench-janus.md.

Self-check, bounded to about a minute::

    PYTHONPATH=functions:. .venv/bin/python -m bench.targets.janus [--subscribers 10]

1 publisher (the pre-encoded VP8 replay of ``bench.sfu_forwarding`` plus an Opus tone) and
``--subscribers`` subscribers in one client process inside the namespace. It prints Janus's
CPU µs per forwarded packet (its /proc CPU time over the RTP packets the subscribers counted),
its RSS, the subscribers' loss and the veth counters.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.sfu_forwarding import (
    SlotCounter,
    encode_clip,
    install_replay_encoder,
    machine_busy_seconds,
    pin,
    proc_cpu_seconds,
    proc_rss_bytes,
    read_clip,
)
from bench.targets.janus_config import HTTP_PORT, JANUS_BINARY, RoomSettings, render

if TYPE_CHECKING:
    import httpx
    from aiortc import RTCConfiguration, RTCPeerConnection

ROOT = Path(__file__).resolve().parents[2]
ROOM = 4242
VETH = ("thb0", "thb1")
"The veth pair inside the namespace; thb0 carries 127.0.0.1/32 for Janus's ICE gathering."
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
IP_TIMEOUT = 10.0
KEEPALIVE_SECONDS = 15.0
"Janus drops a session after 60 s without a request (a long poll does not count): margin."
LONG_POLL_SECONDS = 45.0
"Janus answers a long poll within 30 s (an empty keepalive event); this bounds a stuck one."
SESSION_LIFETIME = 6 * 3600.0
"Hard bound on a session's background tasks, whatever the caller does."
JOIN_BATCH = 10
"Subscribers the self-check joins at once."
POLL_ERRORS = 5
"Consecutive failed long polls after which a session gives up (Janus is gone)."


# --- parent side: namespace + Janus process ---------------------------------------------------


def _require_tools() -> None:
    missing = [
        name
        for name, found in (("janus", JANUS_BINARY.exists()), ("ip", shutil.which("ip")))
        if not found
    ]
    if missing:
        raise RuntimeError(
            f"missing {' and '.join(missing)}: `make system-deps` installs janus and iproute2"
        )
    if os.geteuid() != 0:
        raise RuntimeError("JanusServer needs root: it creates a network namespace (ip netns)")


def _run(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=IP_TIMEOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _tail(path: Path, lines: int = 25) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


PROBE = r"""
import json, sys, urllib.request
url, room = sys.argv[1], int(sys.argv[2])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
def call(path, body=None):
    data = None if body is None else json.dumps(body).encode()
    with opener.open(urllib.request.Request(url + path, data=data), timeout=3) as answer:
        return json.load(answer)
info = call("/info")
session = call("", {"janus": "create", "transaction": "p1"})["data"]["id"]
handle = call(f"/{session}", {"janus": "attach", "plugin": "janus.plugin.videoroom",
                              "transaction": "p2"})["data"]["id"]
rooms = call(f"/{session}/{handle}", {"janus": "message", "transaction": "p3",
                                      "body": {"request": "list"}})
call(f"/{session}", {"janus": "destroy", "transaction": "p4"})
found = [r for r in rooms["plugindata"]["data"]["list"] if r["room"] == room]
print(json.dumps({"plugins": sorted(info["plugins"]), "transports": sorted(info["transports"]),
                  "room": found[0] if found else None}))
"""
"Runs inside the namespace (stdlib only, so it starts fast): is the API up, is the room there."


class JanusServer:
    """Janus 1.1.2 in a private network namespace, with one VideoRoom room."""

    def __init__(
        self, *, workdir: Path, cpus: set[int] | None = None, event_loops: int | None = None
    ) -> None:
        """``event_loops``: None (the default) gives Janus one shared event loop per CPU it is
        pinned to, like our node's one worker per core, or Janus's own default when it is not
        pinned; 0 is Janus's default (a thread per handle: every forwarded packet wakes the
        subscriber's thread, about twice the CPU per packet pinned to one core); n > 0 is n
        shared loops. See docs/bench-janus.md."""
        self.workdir = Path(workdir)
        allowed = os.sched_getaffinity(0)
        if cpus is not None and not (cpus and set(cpus) <= allowed):
            raise ValueError(f"cpus must be a non-empty subset of {sorted(allowed)}, not {cpus}")
        self.cpus = set(cpus) if cpus else None
        if event_loops is None:
            event_loops = len(self.cpus) if self.cpus else 0
        self.event_loops = event_loops
        self.namespace = f"thbench-{os.getpid()}"
        self.url = f"http://127.0.0.1:{HTTP_PORT}/janus"
        self.room = ROOM
        self.log_path = self.workdir / "janus.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._namespace_made = False
        self._atexit_registered = False

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("Janus is not running (call start() first)")
        return self._process.pid

    def wrap(self, argv: list[str]) -> list[str]:
        """How to run a (client) process inside the namespace."""
        return ["ip", "netns", "exec", self.namespace, *argv]

    def veth_counters(self) -> dict[str, int]:
        """Packets and bytes through the veth pair: they stay at 0 if all traffic went on lo."""
        links = json.loads(_run(["ip", "-j", "-s", "-n", self.namespace, "link", "show"]))
        counters: dict[str, int] = {}
        for link in links:
            if link["ifname"] in VETH:
                stats = link["stats64"]
                for direction in ("rx", "tx"):
                    for unit in ("packets", "bytes"):
                        counters[f"{link['ifname']}_{direction}_{unit}"] = stats[direction][unit]
        return counters

    def udp_errors(self) -> dict[str, int]:
        """The namespace's UDP counters (only Janus and its clients live there): datagrams
        dropped for full receive buffers, and all receive errors."""
        if self._process is None:
            raise RuntimeError("Janus is not running (call start() first)")
        lines = Path(f"/proc/{self.pid}/net/snmp").read_text().splitlines()
        names, values = (line.split() for line in lines if line.startswith("Udp:"))
        udp = dict(zip(names, values, strict=True))
        return {"rcvbuf_errors": int(udp["RcvbufErrors"]), "in_errors": int(udp["InErrors"])}

    async def start(self, *, max_publishers: int, bitrate: int) -> None:
        if self._process is not None:
            raise RuntimeError("this JanusServer is already started")
        settings = RoomSettings(
            room=self.room,
            publishers=max_publishers,
            bitrate=bitrate,
            event_loops=self.event_loops,
        )
        _require_tools()
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = render(self.workdir, settings)
        if not self._atexit_registered:
            atexit.register(self._teardown)
            self._atexit_registered = True
        try:
            await asyncio.to_thread(self._make_namespace)
            await asyncio.to_thread(self._spawn, config)
            await self._wait_ready(settings)
        except BaseException:
            await asyncio.to_thread(self._teardown)
            raise

    async def stop(self) -> None:
        await asyncio.to_thread(self._teardown)

    def stop_now(self) -> None:
        """``stop()`` without an event loop (atexit, signal handlers, a sync ``finally``)."""
        self._teardown()

    def _make_namespace(self) -> None:
        existing = _run(["ip", "netns", "list"]).split()
        if self.namespace in existing:
            raise RuntimeError(
                f"network namespace {self.namespace} already exists (another JanusServer in "
                f"this process, or a leftover: `ip netns del {self.namespace}`)"
            )
        _run(["ip", "netns", "add", self.namespace])
        self._namespace_made = True
        inside = ["ip", "netns", "exec", self.namespace]
        # IPv6 off before the veth exists, so it never sends a router solicitation or DAD.
        _run(
            [
                *inside,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]
        )
        ns = ["ip", "-n", self.namespace]
        _run([*ns, "link", "set", "lo", "up"])
        _run([*ns, "link", "add", VETH[0], "type", "veth", "peer", "name", VETH[1]])
        _run([*ns, "addr", "add", "127.0.0.1/32", "dev", VETH[0]])
        _run([*ns, "link", "set", VETH[0], "up"])
        _run([*ns, "link", "set", VETH[1], "up"])
        routes = _run([*ns, "route", "show"]).strip()
        if routes:
            raise RuntimeError(f"namespace {self.namespace} unexpectedly has routes: {routes}")

    def _spawn(self, config: Path) -> None:
        cpus = self.cpus

        def pin_self() -> None:  # runs in the child before exec; Janus's threads inherit it
            if cpus:
                os.sched_setaffinity(0, cpus)

        with self.log_path.open("wb") as log:
            # `ip netns exec` execs Janus in place, so this pid is Janus's own.
            self._process = subprocess.Popen(
                self.wrap([str(JANUS_BINARY), "-C", str(config), "-F", str(self.workdir), "-o"]),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=pin_self,
            )

    async def _wait_ready(self, settings: RoomSettings) -> None:
        process = self._process
        assert process is not None
        deadline = time.monotonic() + START_TIMEOUT
        last_error = ""
        for _attempt in range(int(START_TIMEOUT / 0.2) + 1):
            if process.poll() is not None:
                raise RuntimeError(
                    f"janus exited ({process.returncode}) while starting; log tail:\n"
                    f"{_tail(self.log_path)}"
                )
            if time.monotonic() > deadline:
                break
            probe = await asyncio.create_subprocess_exec(
                *self.wrap([sys.executable, "-I", "-c", PROBE, self.url, str(settings.room)]),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                out, err = await asyncio.wait_for(probe.communicate(), 5)
            except TimeoutError:
                probe.kill()
                await probe.wait()
                last_error = "probe timed out"
                continue
            if probe.returncode == 0:
                self._check_ready(json.loads(out), settings)
                return
            lines = err.decode(errors="replace").strip().splitlines()
            last_error = lines[-1] if lines else f"probe exit {probe.returncode}"
            await asyncio.sleep(0.2)
        raise RuntimeError(
            f"Janus's HTTP API was not ready within {START_TIMEOUT:.0f} s ({last_error}); "
            f"log tail:\n{_tail(self.log_path)}"
        )

    def _check_ready(self, probed: dict[str, Any], settings: RoomSettings) -> None:
        if probed["plugins"] != ["janus.plugin.videoroom"] or probed["transports"] != [
            "janus.transport.http"
        ]:
            raise RuntimeError(f"unexpected Janus plugins/transports loaded: {probed}")
        room = probed["room"]
        if room is None:
            raise RuntimeError(f"room {settings.room} missing; log tail:\n{_tail(self.log_path)}")
        expected = {
            "max_publishers": settings.publishers,
            "bitrate": settings.bitrate,
            "audiocodec": "opus",
            "videocodec": "vp8",
            "audiolevel_ext": True,
        }
        wrong = {k: room.get(k) for k, v in expected.items() if room.get(k) != v}
        if wrong:
            raise RuntimeError(f"room {settings.room} has {wrong}, expected {expected}")
        with contextlib.suppress(OSError):
            if Path(f"/proc/{self.pid}/comm").read_text().strip() != "janus":
                raise RuntimeError(f"pid {self.pid} is not janus")

    def _teardown(self) -> None:
        """Idempotent and synchronous, so that atexit and finally blocks can call it."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT)
        if self._namespace_made:
            done = subprocess.run(
                ["ip", "netns", "del", self.namespace],
                capture_output=True,
                text=True,
                timeout=IP_TIMEOUT,
                check=False,
            )
            if done.returncode != 0 and "No such file" not in done.stderr:
                raise RuntimeError(f"ip netns del {self.namespace}: {done.stderr.strip()}")
            self._namespace_made = False


# --- client side: one participant over the Janus HTTP API -------------------------------------


class JanusError(RuntimeError):
    """Janus (core or plugin) answered a request with an error."""


def loopback_client_configuration() -> RTCConfiguration:
    """For a client process inside the namespace: ICE on 127.0.0.1 only, max-bundle, no STUN."""
    import aioice.ice
    from aiortc import RTCBundlePolicy, RTCConfiguration

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    return RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


@dataclass
class Feed:
    """Another publisher in the room, as Janus announced it."""

    id: int
    display: str
    streams: list[dict[str, Any]]

    def mid(self, kind: str) -> str | None:
        for stream in self.streams:
            if stream.get("type") == kind and not stream.get("disabled"):
                return str(stream["mid"])
        return None


@dataclass
class JanusSession:
    """A Janus session: request/answer pairing over the long poll, keepalive, announced feeds."""

    http: httpx.AsyncClient
    url: str
    session_id: int
    publisher_id: int | None = None
    handles: list[int] = field(default_factory=list)
    feeds: dict[int, Feed] = field(default_factory=dict)
    hangups: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    "Keepalive failures, long-poll errors, a session timeout: what would explain lost media."
    _pending: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _closed: bool = False

    @classmethod
    async def create(cls, http: httpx.AsyncClient, url: str) -> JanusSession:
        answer = await _post(http, url, {"janus": "create"})
        session = cls(http=http, url=url, session_id=int(answer["data"]["id"]))
        session._tasks = [
            asyncio.create_task(session._poll()),
            asyncio.create_task(session._keepalive()),
        ]
        return session

    async def attach(self) -> int:
        answer = await _post(
            self.http,
            f"{self.url}/{self.session_id}",
            {"janus": "attach", "plugin": "janus.plugin.videoroom"},
        )
        handle = int(answer["data"]["id"])
        self.handles.append(handle)
        return handle

    async def message(
        self,
        handle: int,
        body: dict[str, Any],
        *,
        jsep: dict[str, str] | None = None,
        within: float = 20.0,
    ) -> dict[str, Any]:
        """A plugin request; its answer comes inline ("success") or on the long poll ("ack").

        Returns the whole answer (``plugindata`` and ``jsep``); a VideoRoom error raises.
        """
        transaction = secrets.token_hex(8)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = future
        request: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            request["jsep"] = jsep
        try:
            answer = await _post(
                self.http, f"{self.url}/{self.session_id}/{handle}", request, transaction
            )
            if answer["janus"] == "ack":
                answer = await asyncio.wait_for(future, within)
        finally:
            self._pending.pop(transaction, None)
        data = answer.get("plugindata", {}).get("data", {})
        if "error" in data:
            raise JanusError(f"{body.get('request')}: {data.get('error_code')} {data['error']}")
        return answer

    async def trickle_done(self, handle: int) -> None:
        """aiortc puts every candidate in its SDP; tell Janus no more are coming."""
        await _post(
            self.http,
            f"{self.url}/{self.session_id}/{handle}",
            {"janus": "trickle", "candidate": {"completed": True}},
        )

    async def wait_feeds(self, count: int, within: float) -> None:
        deadline = time.monotonic() + within
        while len(self.feeds) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"only {len(self.feeds)} of {count} other publishers after {within:.0f} s"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def close(self) -> None:
        """Stop the background tasks, detach the handles, destroy the session. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        base = f"{self.url}/{self.session_id}"
        for handle in self.handles:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(_post(self.http, f"{base}/{handle}", {"janus": "detach"}), 5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(_post(self.http, base, {"janus": "destroy"}), 5)

    async def _poll(self) -> None:
        started = time.monotonic()
        errors = 0
        url = f"{self.url}/{self.session_id}"
        while not self._closed and time.monotonic() - started < SESSION_LIFETIME:
            try:
                answer = await self.http.get(url, params={"maxev": "20"}, timeout=LONG_POLL_SECONDS)
                answer.raise_for_status()
                events = answer.json()
                # A dead session answers at once with an error: never spin on it.
                if isinstance(events, dict) and events.get("janus") == "error":
                    raise JanusError(f"long poll: {events.get('error')}")
                errors = 0
            except Exception as exc:  # Janus gone or a network hiccup: fail the waiters
                errors += 1
                self.problems.append(f"long poll: {exc!r}")
                if errors >= POLL_ERRORS:
                    for future in self._pending.values():
                        if not future.done():
                            future.set_exception(JanusError(f"long poll failed: {exc!r}"))
                    return
                await asyncio.sleep(0.5)
                continue
            for event in events if isinstance(events, list) else [events]:
                self._dispatch(event)

    def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event.get("janus")
        if kind == "hangup":
            self.hangups.append(str(event.get("reason")))
        elif kind == "timeout":
            self.problems.append("Janus timed the session out")
        data = event.get("plugindata", {}).get("data", {})
        for publisher in data.get("publishers", []):
            if publisher["id"] != self.publisher_id:
                self.feeds[int(publisher["id"])] = Feed(
                    int(publisher["id"]), str(publisher.get("display", "")), publisher["streams"]
                )
                self._changed.set()
        for key in ("unpublished", "leaving"):
            gone = data.get(key)
            if isinstance(gone, int) and self.feeds.pop(gone, None) is not None:
                self._changed.set()
        future = self._pending.get(str(event.get("transaction")))
        if future is not None and not future.done() and kind in ("event", "success", "error"):
            future.set_result(event)

    async def _keepalive(self) -> None:
        started = time.monotonic()
        while not self._closed and time.monotonic() - started < SESSION_LIFETIME:
            await asyncio.sleep(KEEPALIVE_SECONDS)
            try:
                await _post(self.http, f"{self.url}/{self.session_id}", {"janus": "keepalive"})
            except Exception as exc:  # the next one may pass; the long poll sees a dead session
                self.problems.append(f"keepalive: {exc!r}")


async def _post(
    http: httpx.AsyncClient, url: str, request: dict[str, Any], transaction: str | None = None
) -> dict[str, Any]:
    request = {**request, "transaction": transaction or secrets.token_hex(8)}
    answer = await http.post(url, json=request, timeout=20.0)
    answer.raise_for_status()
    body = dict(answer.json())
    if body.get("janus") == "error":
        error = body.get("error", {})
        raise JanusError(f"{request['janus']}: {error.get('code')} {error.get('reason')}")
    return body


def _prefer(pc: RTCPeerConnection, kind: str, mime: str) -> None:
    """Offer/answer only ``mime`` (and its RTX) on every transceiver of ``kind``."""
    from aiortc import RTCRtpSender

    codecs = RTCRtpSender.getCapabilities(kind).codecs
    chosen = [c for c in codecs if c.mimeType.lower() in (mime.lower(), f"{kind}/rtx")]
    for transceiver in pc.getTransceivers():
        if transceiver.kind == kind:
            transceiver.setCodecPreferences(chosen)


def _sdp(pc: RTCPeerConnection) -> dict[str, str]:
    description = pc.localDescription
    return {"type": description.type, "sdp": description.sdp}


async def join_janus(
    http: httpx.AsyncClient,
    url: str,
    room: int,
    *,
    display: str,
    publish: RTCPeerConnection | None,
    subscribe: RTCPeerConnection | None,
    video_feeds: int,
    audio_feeds: int,
    wait_publishers: int,
    timeout: float,  # noqa: ASYNC109 - the interface the harness codes against
    on_subscribe_answer: Callable[[RTCPeerConnection], None] | None = None,
) -> JanusSession:
    """Join ``room`` as one participant; see the module docstring.

    ``publish``: a peer connection with its tracks added (audio, then VP8 video); it publishes
    with "joinandconfigure". ``subscribe``: it receives the video of up to ``video_feeds`` and
    the audio of up to ``audio_feeds`` other publishers (in the order Janus announced them), on
    one multistream subscription, once ``wait_publishers`` others are publishing.
    ``on_subscribe_answer`` runs after the subscriber's local answer is set and before Janus
    gets it (so before DTLS can finish): the place to hook raw RTP counting.
    Everything is bounded by ``timeout``; on failure the session is closed and the error raised.
    """
    from aiortc import RTCSessionDescription

    if not isinstance(room, int) or isinstance(room, bool):
        raise TypeError(f"room must be an int (Janus refuses {type(room).__name__} ids)")
    if min(video_feeds, audio_feeds, wait_publishers) < 0 or timeout <= 0:
        raise ValueError("feed counts and wait_publishers must be >= 0, timeout > 0")
    deadline = time.monotonic() + timeout
    session = await asyncio.wait_for(JanusSession.create(http, url), timeout)
    try:
        # A subscriber-only participant still joins as a (silent) publisher: that handle is
        # how Janus announces the room's publishers and their stream mids.
        announcer = await session.attach()
        join: dict[str, Any] = {"ptype": "publisher", "room": room, "display": display}
        if publish is not None:
            _prefer(publish, "audio", "audio/opus")
            _prefer(publish, "video", "video/VP8")
            await publish.setLocalDescription(await publish.createOffer())
            answer = await session.message(
                announcer,
                {"request": "joinandconfigure", **join, "audio": True, "video": True},
                jsep=_sdp(publish),
                within=deadline - time.monotonic(),
            )
            await session.trickle_done(announcer)
            jsep = answer.get("jsep")
            if not jsep:
                raise JanusError(f"no answer SDP from Janus for the publisher: {answer}")
            await publish.setRemoteDescription(RTCSessionDescription(jsep["sdp"], jsep["type"]))
        else:
            answer = await session.message(
                announcer, {"request": "join", **join}, within=deadline - time.monotonic()
            )
        session.publisher_id = int(answer["plugindata"]["data"]["id"])
        session.feeds.pop(session.publisher_id, None)

        if subscribe is not None and (video_feeds or audio_feeds):
            await session.wait_feeds(wait_publishers, deadline - time.monotonic())
            feeds = list(session.feeds.values())
            streams = [
                {"feed": feed.id, "mid": mid}
                for kind, count in (("audio", audio_feeds), ("video", video_feeds))
                for feed in feeds[:count]
                if (mid := feed.mid(kind)) is not None
            ]
            if streams:
                await _subscribe(session, room, subscribe, streams, deadline, on_subscribe_answer)
        for pc in (publish, subscribe):
            if pc is not None and pc.remoteDescription is not None:
                await _connected(pc, deadline)
        return session
    except BaseException:
        await session.close()
        raise


async def _connected(pc: RTCPeerConnection, deadline: float) -> None:
    """Wait until ICE and DTLS are up, so that a returned participant has media flowing."""
    for _ in range(10_000):
        if pc.connectionState == "connected":
            return
        if pc.connectionState in ("failed", "closed"):
            raise JanusError(f"peer connection {pc.connectionState} while joining")
        if time.monotonic() > deadline:
            raise TimeoutError(f"peer connection still {pc.connectionState} at the deadline")
        await asyncio.sleep(0.02)


async def _subscribe(
    session: JanusSession,
    room: int,
    pc: RTCPeerConnection,
    streams: list[dict[str, Any]],
    deadline: float,
    on_answer: Callable[[RTCPeerConnection], None] | None,
) -> None:
    from aiortc import RTCSessionDescription

    handle = await session.attach()
    offered = await session.message(
        handle,
        {"request": "join", "ptype": "subscriber", "room": room, "streams": streams},
        within=deadline - time.monotonic(),
    )
    jsep = offered.get("jsep")
    if not jsep:
        raise JanusError(f"no offer SDP from Janus for the subscriber: {offered}")
    await pc.setRemoteDescription(RTCSessionDescription(jsep["sdp"], jsep["type"]))
    _prefer(pc, "audio", "audio/opus")
    _prefer(pc, "video", "video/VP8")
    await pc.setLocalDescription(await pc.createAnswer())
    if on_answer is not None:
        on_answer(pc)
    await session.message(
        handle, {"request": "start"}, jsep=_sdp(pc), within=deadline - time.monotonic()
    )
    await session.trickle_done(handle)


# --- raw RTP counting on a subscriber (the approach of bench/sfu_forwarding.py) ----------------


def count_raw_rtp(pc: RTCPeerConnection) -> dict[int, SlotCounter]:
    """Count a subscribe connection's RTP per SSRC from the packet headers, before aiortc.

    SRTP leaves the RTP header in clear, so sequence numbers are read from the protected
    datagram and RTP is never unprotected, parsed, buffered or decoded: no NACK is sent, so
    no retransmission hides a loss. RTCP is still unprotected and handled as usual. Call it
    from ``join_janus(on_subscribe_answer=...)``. Keys are SSRCs; values say the kind via
    the payload type, see ``kind_of``.
    """
    transport = pc.getTransceivers()[0].receiver.transport
    counters: dict[int, SlotCounter] = {}
    media = _media_payload_types(pc.localDescription.sdp)

    class HeaderOnly:
        def __init__(self, session: Any) -> None:
            self.session = session

        def unprotect_rtcp(self, data: bytes) -> bytes:
            return bytes(self.session.unprotect_rtcp(data))

        def unprotect(self, data: bytes) -> bytes:
            return data

    setup_srtp = transport._setup_srtp

    def setup() -> None:
        setup_srtp()
        setattr(transport, "_rx_srtp", HeaderOnly(transport._rx_srtp))  # noqa: B010

    async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
        if (data[1] & 0x7F) not in media:
            return  # RTX or anything else
        ssrc = int.from_bytes(data[8:12])
        counter = counters.get(ssrc)
        if counter is None:
            counter = counters[ssrc] = SlotCounter()
        counter.add((data[2] << 8) | data[3])

    if getattr(transport, "_rx_srtp", None) is not None:
        setup_srtp = lambda: None  # noqa: E731 - already keyed: wrap the live session
        setup()
    else:
        setattr(transport, "_setup_srtp", setup)  # noqa: B010
    setattr(transport, "_handle_rtp_data", handle_rtp_data)  # noqa: B010
    return counters


def _media_payload_types(sdp: str) -> set[int]:
    return {
        int(pt) for pt in re.findall(r"a=rtpmap:(\d+) (?:VP8/90000|opus/48000)", sdp, re.IGNORECASE)
    }


# --- self-check: one client process in the namespace ------------------------------------------


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
        *server.wrap([sys.executable, "-m", "bench.targets.janus", "--client", json.dumps(spec)]),
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
    cli = argparse.ArgumentParser(prog="python -m bench.targets.janus", description=__doc__)
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
