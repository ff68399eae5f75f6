"""Janus Gateway 1.1.2 in a private network namespace, with one VideoRoom room.

:class:`JanusServer` renders a configuration into a work directory (``janus_config``),
creates the namespace ``thbench-<pid>``, starts Janus in it (pinned if asked), waits until its
HTTP API answers and the room is there, and tears it all down. Clients join from processes
inside the namespace (``JanusServer.wrap``), through ``bench.targets.janus_client``.

Why a namespace: Janus never gathers ICE candidates on an interface flagged LOOPBACK, so it
cannot use ``lo`` directly. In the namespace, 127.0.0.1/32 also sits on one end of a veth pair
whose both ends stay inside; Janus gathers 127.0.0.1 there, and the kernel still carries the
traffic over ``lo`` (the veth counters stay at 0). See docs/bench-janus.md.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.load.measure import tail
from bench.targets.janus_config import HTTP_PORT, JANUS_BINARY, RoomSettings, render

ROOM = 4242
VETH = ("thb0", "thb1")
"The veth pair inside the namespace; thb0 carries 127.0.0.1/32 for Janus's ICE gathering."
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
IP_TIMEOUT = 10.0


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


def _log_tail(path: Path) -> str:
    return tail(path, 25) or "(no log)"


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
                    f"{_log_tail(self.log_path)}"
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
            f"log tail:\n{_log_tail(self.log_path)}"
        )

    def _check_ready(self, probed: dict[str, Any], settings: RoomSettings) -> None:
        if probed["plugins"] != ["janus.plugin.videoroom"] or probed["transports"] != [
            "janus.transport.http"
        ]:
            raise RuntimeError(f"unexpected Janus plugins/transports loaded: {probed}")
        room = probed["room"]
        if room is None:
            raise RuntimeError(
                f"room {settings.room} missing; log tail:\n{_log_tail(self.log_path)}"
            )
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
