"""Join storms in the local twin: fresh participants joining at rising rates until errors
appear or the join latency's p99 passes a bound.

One join is what a browser does: the HTTP join (a grant), the WebSocket connect (authorizer
and `$connect`), and the `join` action, timed from its scheduled start to the action's reply.
Joins start on an open-loop schedule (one every 1/rate s, whether or not earlier ones have
finished), in steps of rising rate, each bounded in count and time; the storm stops at the
first step with an error or a p99 over the bound. Two storms: every join into one meeting
(each join fans `participant.joined` out to everyone already there, so its cost grows with
the meeting), and joins spread round-robin over many meetings.

The reference, measured in the same run, is the emulator alone: the same ramp of bare
WebSocket connects to a twin whose authorizer and `$connect` are one-line handlers (no
DynamoDB, no token check, none of our code). The twin runs in this process; the clients run
in a child process on loopback.

    python -m bench.join_storm [--step-seconds 3] [--p99-bound-ms 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import multiprocessing as mp
import secrets
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import websockets
from websockets.typing import Subprotocol

from bench.invocation_timers import InvocationTimers, summarize
from infra.twin.server import LocalTwin, TwinOptions
from townhall.routes import SUBPROTOCOL

RESULTS = Path(__file__).resolve().parent / "results"
RATES = (5, 10, 20, 40, 80, 160, 320, 640)
MAX_JOINS_PER_STEP = 400
MAX_JOINS_PER_STORM = 1500
MAX_IN_FLIGHT = 300  # joins started but not finished; past it the step counts as failed
JOIN_TIMEOUT_SECONDS = 15.0
MANY_MEETINGS = 20
BARE = "bench.join_storm"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


# -- the reference's handlers: the emulator with none of our code ------------------------------


def bare_authorizer(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    return {
        "principalId": "bench",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}
            ],
        },
    }


def bare_connect(_event: dict[str, Any], _context: Any) -> dict[str, Any]:
    return {"statusCode": 200}


def bare_nothing(_event: dict[str, Any], _context: Any) -> None:
    return None


BARE_OVERRIDES = {
    "WsAuthorizerFunction": f"{BARE}.bare_authorizer",
    "WsConnectFunction": f"{BARE}.bare_connect",
    "WsDisconnectFunction": f"{BARE}.bare_nothing",
    "WsSignalingFunction": f"{BARE}.bare_nothing",
}


# -- client helpers (also used by bench.chat_fanout) -------------------------------------------


async def host_meeting(
    http: httpx.AsyncClient, title: str = "Bench", access_token: str | None = None
) -> tuple[str, str]:
    """Schedule a meeting (signing a host up first unless given the host's access token);
    (meeting id, the host's access token)."""
    token = access_token
    if token is None:
        signup = await http.post(
            "/api/auth/signup",
            json={
                "email": f"bench-{uuid.uuid4().hex[:10]}@example.com",
                "password": "bench password 1",
                "name": "Bench Host",
            },
        )
        signup.raise_for_status()
        token = str(signup.json()["access_token"])
    meeting = await http.post(
        "/api/meetings",
        headers={"authorization": f"Bearer {token}"},
        json={
            "title": title,
            "start": "2026-12-01T09:00",
            "timezone": "UTC",
            "duration_minutes": 60,
            # Joins arrive all at once, the host's among them: whoever is first starts it.
            "allow_before_host": True,
        },
    )
    meeting.raise_for_status()
    return str(meeting.json()["meeting_id"]), str(token)


async def join_grant(
    http: httpx.AsyncClient, meeting_id: str, name: str, access_token: str | None = None
) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {access_token}"} if access_token else {}
    body: dict[str, Any] = {"display_name": name}
    if access_token is None:
        body["guest_key"] = secrets.token_urlsafe(24)  # a new guest identity each
    answer = await http.post(f"/api/meetings/{meeting_id}/join", json=body, headers=headers)
    if answer.status_code != 200:
        raise RuntimeError(f"HTTP join answered {answer.status_code}: {answer.text[:200]}")
    grant: dict[str, Any] = answer.json()
    return grant


async def open_socket(ws_url: str, meeting_id: str, token: str) -> Any:
    # No client pings: API Gateway does not need them, and a busy twin answers late.
    return await websockets.connect(
        f"{ws_url}?meeting={meeting_id}",
        subprotocols=[Subprotocol(SUBPROTOCOL), Subprotocol(token)],
        max_size=None,
        ping_interval=None,
        open_timeout=JOIN_TIMEOUT_SECONDS,
        close_timeout=2,
    )


class Participant:
    """One socket; a reader task started at once (so the twin never waits on a full socket
    buffer), which resolves replies by request id and counts everything else."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.messages = 0
        self.last_arrival = 0.0
        self.chats: dict[str, float] = {}
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                now = time.perf_counter()
                self.messages += 1
                self.last_arrival = now
                message = json.loads(raw)
                kind = message.get("type")
                if kind in ("reply", "error"):
                    waiter = self._replies.pop(str(message.get("id")), None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(message)
                elif kind == "event" and message.get("event") == "chat.message":
                    self.chats[message["data"]["message"]["text"]] = now
                elif kind == "raw":
                    self.chats[message["text"]] = now
        except websockets.ConnectionClosed:
            pass

    async def request(
        self, action: str, data: dict[str, Any] | None = None, within: float = 30
    ) -> dict[str, Any]:
        request_id = uuid.uuid4().hex[:12]
        waiter = asyncio.get_running_loop().create_future()
        self._replies[request_id] = waiter
        body: dict[str, Any] = {"action": action, "id": request_id}
        if data is not None:
            body["data"] = data
        await self.ws.send(json.dumps(body))
        reply: dict[str, Any] = await asyncio.wait_for(waiter, within)
        if reply.get("type") != "reply":
            raise RuntimeError(f"{action} refused: {reply.get('error') or reply}")
        return reply

    async def close(self) -> None:
        with contextlib.suppress(TimeoutError, websockets.WebSocketException, OSError):
            await asyncio.wait_for(self.ws.close(), 5)
        self._reader.cancel()


# -- the storm, client side (child process) ----------------------------------------------------


@dataclass
class JoinOutcome:
    latency: float | None = None  # scheduled start to the join reply, s
    http: float = 0.0
    connect: float = 0.0
    action: float = 0.0
    error: str | None = None


@dataclass
class StepResult:
    rate: int
    joins: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    parts_ms: dict[str, list[float]] = field(default_factory=dict)
    wall_seconds: float = 0.0

    @property
    def achieved_rate(self) -> float:
        return len(self.latencies_ms) / self.wall_seconds if self.wall_seconds else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "joins": self.joins,
            "completed": len(self.latencies_ms),
            "achieved_per_s": round(self.achieved_rate, 1),
            "p50_ms": round(percentile(self.latencies_ms, 50), 1),
            "p99_ms": round(percentile(self.latencies_ms, 99), 1),
            "errors": len(self.errors),
            "first_errors": self.errors[:3],
            "parts_p50_ms": {k: round(percentile(v, 50), 1) for k, v in self.parts_ms.items()},
        }


class StormClients:
    def __init__(self, base_url: str, ws_url: str, bare: bool) -> None:
        self.base_url = base_url
        self.ws_url = ws_url
        self.bare = bare
        self.meetings: list[str] = []
        self.hosts: list[Participant] = []
        self.joined: list[Participant] = []
        self.http = httpx.AsyncClient(
            base_url=base_url,
            timeout=JOIN_TIMEOUT_SECONDS,
            limits=httpx.Limits(max_connections=MAX_IN_FLIGHT),
        )
        self._count = 0

    async def prepare(self, meetings: int) -> None:
        """Meetings with their host in (the host ends each meeting at the end, so the
        teardown does not fan one `participant.left` per socket out to everyone)."""
        if self.bare:
            return
        access = ""
        for _ in range(meetings):
            meeting_id, access = await host_meeting(self.http, "Join storm", access or None)
            grant = await join_grant(self.http, meeting_id, "Host", access)
            host = Participant(await open_socket(self.ws_url, meeting_id, grant["join_token"]))
            await host.request("join")
            self.meetings.append(meeting_id)
            self.hosts.append(host)

    async def one_join(self, at: float, meeting_id: str, outcome: JoinOutcome) -> None:
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        self._count += 1
        try:
            if self.bare:
                t0 = time.perf_counter()
                ws = await open_socket(self.ws_url, "bare", "bare")
                self.joined.append(Participant(ws))
                outcome.connect = time.perf_counter() - t0
            else:
                t0 = time.perf_counter()
                grant = await join_grant(self.http, meeting_id, f"J{self._count}")
                t1 = time.perf_counter()
                ws = await open_socket(self.ws_url, meeting_id, grant["join_token"])
                participant = Participant(ws)
                self.joined.append(participant)
                t2 = time.perf_counter()
                await participant.request("join", within=JOIN_TIMEOUT_SECONDS)
                t3 = time.perf_counter()
                outcome.http, outcome.connect, outcome.action = t1 - t0, t2 - t1, t3 - t2
            outcome.latency = time.perf_counter() - at
        except Exception as exc:  # any failure is the storm's result, not the bench's
            outcome.error = f"{type(exc).__name__}: {str(exc)[:120]}"

    async def step(self, rate: int, seconds: float) -> StepResult:
        count = min(MAX_JOINS_PER_STEP, max(1, round(rate * seconds)))
        start = time.perf_counter() + 0.05
        outcomes = [JoinOutcome() for _ in range(count)]
        tasks = [
            asyncio.create_task(
                self.one_join(
                    start + i / rate,
                    self.meetings[i % len(self.meetings)] if self.meetings else "",
                    outcomes[i],
                )
            )
            for i in range(count)
        ]
        limit = seconds + JOIN_TIMEOUT_SECONDS * 2
        _done, pending = await asyncio.wait(tasks, timeout=limit)
        for task in pending:
            task.cancel()
        result = StepResult(rate=rate, joins=count)
        result.wall_seconds = time.perf_counter() - start
        for outcome in outcomes:
            if outcome.latency is not None:
                result.latencies_ms.append(outcome.latency * 1000)
                for name in ("http", "connect", "action"):
                    value = getattr(outcome, name)
                    if value:
                        result.parts_ms.setdefault(name, []).append(value * 1000)
            else:
                result.errors.append(outcome.error or "timed out")
        if pending:
            result.errors.append(f"{len(pending)} joins unfinished after {limit:.0f} s")
        return result

    async def teardown(self) -> None:
        for host in self.hosts:
            try:
                await host.request("end", within=60)
            except Exception as exc:
                print(f"ending a meeting failed: {exc}", file=sys.stderr)
        everyone = self.hosts + self.joined
        for first in range(0, len(everyone), 100):
            await asyncio.gather(*(p.close() for p in everyone[first : first + 100]))
        await self.http.aclose()


async def _storm(
    base_url: str, ws_url: str, bare: bool, meetings: int, plan: dict[str, Any], pipe: Connection
) -> None:
    clients = StormClients(base_url, ws_url, bare)
    await clients.prepare(meetings)
    pipe.send(("prepared", None))
    total = 0
    for rate in plan["rates"]:
        result = await clients.step(rate, plan["step_seconds"])
        total += result.joins
        pipe.send(("step", result.summary()))
        failed = result.errors or percentile(result.latencies_ms, 99) > plan["p99_bound_ms"]
        if failed or total >= MAX_JOINS_PER_STORM:
            break
        await asyncio.sleep(plan["pause_seconds"])
    await clients.teardown()
    pipe.send(("done", None))


def _storm_process(
    base_url: str, ws_url: str, bare: bool, meetings: int, plan: dict[str, Any], pipe: Connection
) -> None:
    asyncio.run(_storm(base_url, ws_url, bare, meetings, plan, pipe))


# -- the twin side (this process) --------------------------------------------------------------


def run_storm(
    name: str, bare: bool, meetings: int, plan: dict[str, Any], timers: InvocationTimers
) -> list[dict[str, Any]]:
    options = TwinOptions(
        handler_overrides=BARE_OVERRIDES if bare else {},
        lambda_processes=plan["lambda_processes"],
        invocation_observers=(timers,),
    )
    twin = LocalTwin.start(Path(tempfile.mkdtemp(prefix="bench-join-")), options=options)
    steps: list[dict[str, Any]] = []
    try:
        context = mp.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(
            target=_storm_process,
            args=(twin.base_url, twin.ws_url, bare, meetings, plan, child),
        )
        process.start()
        try:
            timers.take()
            deadline = time.monotonic() + plan["storm_limit_seconds"]
            while time.monotonic() < deadline:
                if not parent.poll(max(0.1, deadline - time.monotonic())):
                    break
                kind, summary = parent.recv()
                if kind == "done":
                    break
                if kind == "prepared":
                    timers.take()  # the set-up (sign-up, meetings, hosts) is not the storm
                    continue
                # What the twin's invocations spent during the step, by route.
                summary["attribution"] = summarize(timers.take())
                steps.append(summary)
                print(_step_line(name, summary), file=sys.__stdout__, flush=True)
            else:
                print(f"{name}: storm stopped at its time limit", file=sys.__stderr__)
        finally:
            process.join(60)
            if process.is_alive():
                process.kill()
    finally:
        twin.stop()
    return steps


def _step_line(name: str, s: dict[str, Any]) -> str:
    parts = " ".join(f"{k} {v:.0f}" for k, v in s["parts_p50_ms"].items())
    return (
        f"{name:24} {s['rate']:5d}/s {s['completed']:5d}/{s['joins']:<5d} "
        f"{s['achieved_per_s']:7.1f}/s p50 {s['p50_ms']:7.1f} p99 {s['p99_ms']:7.1f} ms "
        f"errors {s['errors']:3d}  [{parts}]"
    )


def attribution_line(route: str, a: dict[str, float]) -> str:
    return (
        f"{route:36} n {a['invocations']:5.0f}  queued {a['queued_ms']:7.1f}  handler "
        f"{a['duration_ms']:7.1f} = moto {a['dynamodb_ms']:6.1f} ({a['dynamodb_calls']:.0f} "
        f"calls) + posts {a['posts_ms']:6.1f} + ours {a['ours_ms']:6.1f}"
    )


def rate_held(steps: list[dict[str, Any]], p99_bound_ms: float) -> dict[str, Any] | None:
    """The last step without errors and with p99 within the bound (steps stop at the first
    that fails, so this is the highest rate held)."""
    held = [s for s in steps if not s["errors"] and s["p99_ms"] <= p99_bound_ms]
    return held[-1] if held else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step-seconds", type=float, default=3.0)
    parser.add_argument("--p99-bound-ms", type=float, default=1000.0)
    parser.add_argument("--rates", type=int, nargs="+", default=list(RATES))
    parser.add_argument("--meetings", type=int, default=MANY_MEETINGS)
    parser.add_argument("--storm-limit-seconds", type=float, default=150.0)
    parser.add_argument(
        "--lambda-processes",
        type=int,
        default=0,
        help="worker processes for the handlers (0: threads in the twin's process)",
    )
    args = parser.parse_args()
    if not 0.5 <= args.step_seconds <= 30 or not all(1 <= r <= 2000 for r in args.rates):
        raise SystemExit("step seconds must be 0.5..30 and rates 1..2000 joins/s")
    if not 0 <= args.lambda_processes <= 16:
        raise SystemExit("lambda processes must be 0..16")
    if not 2 <= args.meetings <= 100 or not 10 <= args.p99_bound_ms <= 30000:
        raise SystemExit("meetings must be 2..100 and the p99 bound 10..30000 ms")
    plan = {
        "rates": sorted(args.rates),
        "step_seconds": args.step_seconds,
        "p99_bound_ms": args.p99_bound_ms,
        "pause_seconds": 1.0,
        "storm_limit_seconds": args.storm_limit_seconds,
        "lambda_processes": args.lambda_processes,
    }
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Handler logs and metrics (JSON lines on stdout) go to a file, not over the figures.
    log_file = Path(tempfile.mkdtemp(prefix="bench-join-log-")) / "handlers.log"
    started = time.monotonic()
    timers = InvocationTimers()
    timers.install()
    with log_file.open("w") as handler_output:
        sys.stdout = handler_output
        try:
            storms = {
                "reference: bare $connect": run_storm(
                    "reference: bare $connect", True, 0, plan, timers
                ),
                "ours: one meeting": run_storm("ours: one meeting", False, 1, plan, timers),
                f"ours: {args.meetings} meetings": run_storm(
                    f"ours: {args.meetings} meetings", False, args.meetings, plan, timers
                ),
            }
        finally:
            sys.stdout = sys.__stdout__
            timers.uninstall()
    reference = rate_held(storms["reference: bare $connect"], args.p99_bound_ms)
    print(
        f"\nrate held (no errors, p99 ≤ {args.p99_bound_ms:.0f} ms), {args.step_seconds} s steps:"
    )
    summary: dict[str, Any] = {}
    for name, steps in storms.items():
        held = rate_held(steps, args.p99_bound_ms)
        line = f"{name:28} "
        if held is None:
            line += "none held"
        else:
            line += (
                f"{held['rate']:4d}/s (achieved {held['achieved_per_s']:.0f}/s) "
                f"p50 {held['p50_ms']:.0f} p99 {held['p99_ms']:.0f} ms"
            )
            ref_steps = storms["reference: bare $connect"]
            if reference is not None and ref_steps and name != "reference: bare $connect":
                # Latency compared at the first (slowest) step, where neither is loaded.
                line += (
                    f"; ratio to reference: rate {held['rate'] / reference['rate']:.3f}x,"
                    f" p50 at {steps[0]['rate']}/s "
                    f"{steps[0]['p50_ms'] / ref_steps[0]['p50_ms']:.1f}x"
                )
        print(line)
        summary[name] = {"held": held, "steps": steps}
    print("\nwhere a join's time goes (mean ms per invocation; the held step, then the next):")
    for name, steps in storms.items():
        held = rate_held(steps, args.p99_bound_ms)
        shown = [s for s in steps if s is held or steps.index(s) == len(steps) - 1]
        for step in shown:
            print(f"{name} at {step['rate']}/s:")
            for route, a in step["attribution"].items():
                print("  " + attribution_line(route, a))
    duration = time.monotonic() - started
    print(f"(handler output in {log_file}; {duration:.0f} s)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "join_storm.json").write_text(
        json.dumps({"plan": plan, "storms": summary, "seconds": round(duration)}, indent=2)
    )


if __name__ == "__main__":
    main()
