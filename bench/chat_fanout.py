"""Chat fan-out latency in the local twin: one participant's chat send to delivery at all the
others, for meetings of N connections, with where the time goes.

Each meeting size gets a fresh twin in this process. Its participants are real WebSocket
clients on loopback, spread over child processes (at most 250 sockets each, so the clients
neither share the twin's interpreter lock nor starve one loop). Phases, each bounded in time:

1. Join. Every participant does the HTTP join, the WebSocket connect and the `join` action,
   one after another within a process. Each join fans `participant.joined` out to everyone
   already in, so a meeting of N costs N²/2 posts to fill: from 1,000 up (`--seed-from`) the
   `join` action is replaced by writing the roster straight into the table (the items `join`
   would write: admitted, with the connection id), after the same HTTP join and connect.
2. Drain. After the last join reply, until no socket has received anything for 1 s: the
   join fan-outs still in flight. Reported on its own, so it does not land in the chat tail.
3. Chat. The host sends `--messages` chats one after another, each waiting for its reply; each
   receiver stamps each message's arrival. Latency is arrival minus send over every (message,
   receiver) pair, on the system-wide monotonic clock all processes share. Chats are paced
   (`pace_seconds`): each is sent once the last has had time to reach everyone. The sender's wait
   for each reply is reported too (`reply_ms`): with the outbox the reply no longer waits for
   the fan-out.
4. Reference, in the same run: the emulator's floor, the same number of messages posted to the
   same connections through the management API by the production posting client
   (`ConnectionNotifier.post_many`: same threads, same signing), with none of our handler code
   and no DynamoDB in the path.

Attribution: the invocation timers (bench/invocation_timers.py, an observer of the twin's
Lambda runtime) split each chat invocation into time queued for a Lambda thread (emulator),
DynamoDB round trips (moto), @connections posts (posting client + emulator) and the rest (our
code).

    python -m bench.chat_fanout [--participants 50 200 1000] [--messages 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from bench.invocation_timers import InvocationTimers, summarize
from bench.join_storm import Participant, host_meeting, join_grant, open_socket, percentile
from infra.twin.server import LocalTwin, TwinOptions

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_P99_MS = 100.0
TARGET_SIZE = 200
CLIENTS_PER_PROCESS = 250
CONNECT_CONCURRENCY = 4  # per client process, when the roster is seeded
QUIET_SECONDS = 1.0
SETTLE_SECONDS = 0.5
WARM_UP_CHATS = 4
PHASE_LIMIT_SECONDS = 300.0
LAMBDA_PROCESSES = 0


# -- the client side (child processes) ---------------------------------------------------------


async def _connect_all(
    http: httpx.AsyncClient,
    ws_url: str,
    meeting_id: str,
    indices: range,
    host_access: str,
    seeded: bool,
) -> tuple[list[Participant], float]:
    """Enter every participant; (participants, time of the last join reply)."""
    people: dict[int, Participant] = {}
    last_reply = 0.0
    slots = asyncio.Semaphore(CONNECT_CONCURRENCY if seeded else 1)

    async def enter(i: int) -> None:
        nonlocal last_reply
        async with slots:
            grant = await join_grant(http, meeting_id, f"P{i}", host_access if i == 0 else None)
            people[i] = Participant(await open_socket(ws_url, meeting_id, grant["join_token"]))
            if not seeded:
                await people[i].request("join", within=60)
                last_reply = time.perf_counter()

    await asyncio.gather(*(enter(i) for i in indices))
    return [people[i] for i in indices], last_reply


async def _quiet(people: list[Participant], limit: float) -> float:
    """Wait until no socket received anything for QUIET_SECONDS; the last arrival."""
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        last = max(p.last_arrival for p in people)
        if time.perf_counter() - last >= QUIET_SECONDS:
            return last
        await asyncio.sleep(0.1)
    return max(p.last_arrival for p in people)


async def _clients(
    base_url: str,
    ws_url: str,
    meeting_id: str,
    host_access: str,
    indices: range,
    seeded: bool,
    pipe: Connection,
) -> None:
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        try:
            people, last_reply = await _connect_all(
                http, ws_url, meeting_id, indices, host_access, seeded
            )
        except Exception as exc:  # the twin refused or timed out: the parent reports it
            pipe.send(("failed", f"joining: {type(exc).__name__}: {exc}"))
            return
    pipe.send(("ready", last_reply))
    sender = people[0] if indices.start == 0 else None
    while True:
        if not await loop.run_in_executor(None, pipe.poll, PHASE_LIMIT_SECONDS * 2):
            break  # the parent is gone
        command, argument = pipe.recv()
        if command == "drain":
            pipe.send(("drained", await _quiet(people, argument)))
        elif command == "chat" and sender is not None:
            messages, pace = argument
            # Untimed chats first: the first call of a code path pays its imports, in every
            # worker process that may serve it.
            for _ in range(WARM_UP_CHATS):
                await sender.request("chat", {"text": "warm-up"}, within=60)
                await asyncio.sleep(pace)
            await asyncio.sleep(SETTLE_SECONDS)
            sent: dict[str, float] = {}
            replies: list[float] = []
            for i in range(messages):
                text = f"m{i}"
                sent[text] = time.perf_counter()
                await sender.request("chat", {"text": text}, within=60)
                replies.append((time.perf_counter() - sent[text]) * 1000)
                # One message at a time through the emulator: the next is sent once this one
                # has had time to reach everyone, so latency is not a queue behind earlier ones.
                await asyncio.sleep(max(0.0, sent[text] + pace - time.perf_counter()))
            pipe.send(("sent", (sent, replies)))
        elif command == "arrivals":
            await asyncio.sleep(SETTLE_SECONDS)
            # The sender's own copies are not deliveries.
            pipe.send(("arrivals", [p.chats for p in people if p is not sender]))
        elif command == "end" and sender is not None:
            # Ending first makes the teardown cheap: no `participant.left` fan-out per socket.
            try:
                await sender.request("end", within=120)
                pipe.send(("ended", None))
            except Exception as exc:
                pipe.send(("ended", repr(exc)))
        elif command == "close":
            for first in range(0, len(people), 100):
                await asyncio.gather(*(p.close() for p in people[first : first + 100]))
            pipe.send(("closed", None))
            return


def _client_process(
    base_url: str,
    ws_url: str,
    meeting_id: str,
    host_access: str,
    indices: range,
    seeded: bool,
    pipe: Connection,
) -> None:
    asyncio.run(_clients(base_url, ws_url, meeting_id, host_access, indices, seeded, pipe))


# -- the twin side (this process) --------------------------------------------------------------


class ClientFleet:
    """The child processes holding one meeting's sockets, and their pipes."""

    def __init__(self, twin: LocalTwin, meeting_id: str, host_access: str, n: int, seeded: bool):
        context = mp.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[Any] = []
        shares = math.ceil(n / CLIENTS_PER_PROCESS)
        for k in range(shares):
            indices = range(k * n // shares, (k + 1) * n // shares)
            parent, child = context.Pipe()
            process = context.Process(
                target=_client_process,
                args=(twin.base_url, twin.ws_url, meeting_id, host_access, indices, seeded, child),
            )
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    def ask(self, command: str, argument: Any = None, only_host: bool = False) -> list[Any]:
        pipes = self.pipes[:1] if only_host else self.pipes
        for pipe in pipes:
            pipe.send((command, argument))
        return self.collect(pipes)

    def collect(self, pipes: list[Connection] | None = None) -> list[Any]:
        answers = []
        deadline = time.monotonic() + PHASE_LIMIT_SECONDS
        for pipe in pipes if pipes is not None else self.pipes:
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise RuntimeError(f"clients did not answer within {PHASE_LIMIT_SECONDS:.0f} s")
            kind, answer = pipe.recv()
            if kind == "failed":
                raise RuntimeError(f"a client process failed: {answer}")
            answers.append(answer)
        return answers

    def stop(self) -> None:
        for process in self.processes:
            process.join(30)
            if process.is_alive():
                process.kill()


def seed_roster(twin: LocalTwin, meeting_id: str) -> int:
    """Write what `join` would: each connected participant admitted, with its connection id
    and a place. Returns how many were written."""
    from townhall.model.session import SessionKey
    from townhall.store import dynamo
    from townhall.store.participants import ParticipantStore, participant_item

    table = twin.table_names["MEETINGS_TABLE"]
    contexts = {
        connection_id: context
        for connection_id, context in twin.live_connection_authorizers().items()
        if context.get("meetingId") == meeting_id
    }
    connection_of = {str(c.get("participantId")): cid for cid, c in contexts.items()}
    sessions = {str(c.get("sessionId")) for c in contexts.values()}
    now = int(time.time())
    items = []
    participants = [
        p for sid in sessions for p in ParticipantStore(table).all(SessionKey(meeting_id, sid))
    ]
    for place, p in enumerate(participants, start=1):
        connection_id = connection_of.get(p.participant_id)
        if connection_id is None:
            continue
        p.status, p.connection_id, p.place, p.joined_at = "admitted", connection_id, place, now
        items.append({"PutRequest": {"Item": dynamo.to_ddb(participant_item(p))}})
    client = dynamo.client()
    for first in range(0, len(items), 25):
        pending: dict[str, Any] = {table: items[first : first + 25]}
        for _ in range(10):  # unprocessed items are retried, a bounded number of times
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending:
                break
        else:
            raise RuntimeError("DynamoDB kept items unprocessed while seeding the roster")
    return len(items)


def pace_seconds(n: int) -> float:
    """Time from one chat to the next at N connections: longer than the emulator needs to post
    one message to all of them (its floor is about 0.5 ms a post), so each message is measured
    alone. Before the outbox the sender's own reply paced it (it waited for the fan-out); with
    the outbox the reply comes first, and an unpaced sender would measure the queue."""
    return max(0.25, n * 0.0015)


def reference_posts(twin: LocalTwin, messages: int) -> dict[str, float]:
    from townhall.notifier import ConnectionNotifier

    notifier = ConnectionNotifier(twin.management_endpoint)
    ids = twin.live_connection_ids()
    sent: dict[str, float] = {}
    for i in range(messages):
        text = f"f{i}"
        body = json.dumps({"type": "raw", "text": text})
        sent[text] = time.perf_counter()
        notifier.post_many((c, body) for c in ids)
        time.sleep(max(0.0, sent[text] + pace_seconds(len(ids)) - time.perf_counter()))
    return sent


def measure(
    n: int, messages: int, seed_from: int, processes: int, timers: InvocationTimers
) -> dict[str, Any]:
    seeded = n >= seed_from
    twin = LocalTwin.start(
        Path(tempfile.mkdtemp(prefix="bench-fanout-")),
        options=TwinOptions(lambda_processes=processes, invocation_observers=(timers,)),
    )
    fleet: ClientFleet | None = None
    try:
        meeting_id, host_access = asyncio.run(_host(twin.base_url))
        timers.take()
        started = time.perf_counter()
        fleet = ClientFleet(twin, meeting_id, host_access, n, seeded)
        last_replies = fleet.collect()
        joined_at = time.perf_counter()
        seeded_count = seed_roster(twin, meeting_id) if seeded else 0
        join_timings = summarize(timers.take())
        drained = fleet.ask("drain", PHASE_LIMIT_SECONDS)
        drain_s = max(0.0, max(drained) - max(last_replies)) if not seeded else 0.0
        timers.take()
        ((sent, replies),) = fleet.ask("chat", (messages, pace_seconds(n)), only_host=True)
        chat_timings = [t for t in timers.take() if t.route == "chat"]
        floor_sent = reference_posts(twin, messages)
        arrivals = [a for share in fleet.ask("arrivals") for a in share]
        fleet.ask("end", only_host=True)
        fleet.ask("close")
    finally:
        if fleet is not None:
            fleet.stop()
        twin.stop()
    ours = [(a[t] - s) * 1000 for t, s in sent.items() for a in arrivals if t in a]
    floor = [(a[t] - s) * 1000 for t, s in floor_sent.items() for a in arrivals if t in a]
    return {
        "participants": n,
        "seeded": seeded,
        "seeded_rows": seeded_count,
        "join_seconds": round(joined_at - started, 1),
        "drain_seconds": round(drain_s, 2),
        "receivers": len(arrivals),
        # The sender's wait for its reply, and every receiver's wait for the message.
        "reply_ms": _stats(replies),
        "ours_ms": _stats(ours),
        "reference_ms": _stats(floor),
        "missing": len(sent) * len(arrivals) - len(ours),
        "missing_reference": len(floor_sent) * len(arrivals) - len(floor),
        "chat_attribution": summarize(chat_timings).get("chat", {}),
        "join_attribution": join_timings,
    }


async def _host(base_url: str) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        return await host_meeting(http, "Fan-out")


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": math.nan, "p99": math.nan, "mean": math.nan, "n": 0}
    return {
        "p50": round(percentile(values, 50), 1),
        "p99": round(percentile(values, 99), 1),
        "mean": round(statistics.fmean(values), 1),
        "n": len(values),
    }


def report(result: dict[str, Any]) -> list[str]:
    n, ours, ref = result["participants"], result["ours_ms"], result["reference_ms"]
    a = result["chat_attribution"]
    how = "roster seeded" if result["seeded"] else "every one joined"
    lines = [
        f"{n:5d}  ours: chat → every receiver        p50 {ours['p50']:7.1f}  p99 {ours['p99']:7.1f}"
        f"  mean {ours['mean']:7.1f} ms  missing {result['missing']}",
        f"{n:5d}  reference: @connections posts only p50 {ref['p50']:7.1f}  p99 {ref['p99']:7.1f}"
        f"  mean {ref['mean']:7.1f} ms  missing {result['missing_reference']}",
        f"{n:5d}  ratio ours/reference: p50 {ours['p50'] / ref['p50']:.2f}x, p99 "
        f"{ours['p99'] / ref['p99']:.2f}x; p99 vs the {TARGET_P99_MS:.0f} ms aim: "
        f"{ours['p99'] / TARGET_P99_MS:.2f}x",
        f"{n:5d}  join phase {result['join_seconds']} s ({how}), drain after the last join "
        f"{result['drain_seconds']} s",
    ]
    if a:
        lines.append(
            f"{n:5d}  one chat invocation (mean ms): queued {a['queued_ms']} (emulator) + handler "
            f"{a['duration_ms']} = moto {a['dynamodb_ms']} ({a['dynamodb_calls']:.0f} calls) + "
            f"@connections posts {a['posts_ms']} ({n - 1} posts, "
            f"{a['posts_ms'] / max(1, n - 1) * 1000:.0f} µs each) + our code {a['ours_ms']}"
        )
    return lines


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["participants"] for r in results]
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for key, label, colour in (
        ("ours_ms", "ours: chat → every receiver", "tab:blue"),
        ("reference_ms", "reference: @connections posts only", "tab:gray"),
    ):
        axis.plot(
            sizes, [r[key]["p50"] for r in results], "o-", color=colour, label=f"{label}, p50"
        )
        axis.plot(
            sizes, [r[key]["p99"] for r in results], "s--", color=colour, label=f"{label}, p99"
        )
    axis.axhline(TARGET_P99_MS, color="tab:red", linewidth=0.8, label="aim: p99 ≤ 100 ms at 200")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xticks(sizes, [str(s) for s in sizes])
    axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axis.set_xlabel("connections in the meeting")
    axis.set_ylabel("send → delivery, ms")
    axis.set_title("Chat fan-out in the local twin")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def save(results: list[dict[str, Any]], messages: int, processes: int, seconds: float) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "chat_fanout.json").write_text(
        json.dumps(
            {
                "messages": messages,
                "lambda_processes": processes,
                "load_average": round(os.getloadavg()[0], 1),
                "results": results,
                "seconds": round(seconds),
            },
            indent=2,
        )
    )
    if len(results) > 1:
        plot(results, RESULTS / "chat_fanout.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, nargs="+", default=[50, 200, 1000])
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--seed-from", type=int, default=1000)
    parser.add_argument(
        "--lambda-processes",
        type=int,
        default=LAMBDA_PROCESSES,
        help="worker processes for the handlers (0: threads in the twin's process)",
    )
    args = parser.parse_args()
    if not all(2 <= n <= 2000 for n in args.participants) or not 1 <= args.messages <= 500:
        raise SystemExit("participants must be 2..2000 and messages 1..500")
    if not 0 <= args.lambda_processes <= 16:
        raise SystemExit("lambda processes must be 0..16")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    timers = InvocationTimers()
    timers.install()
    # Handler logs and metrics (JSON lines on stdout) go to a file, not over the figures.
    log_file = Path(tempfile.mkdtemp(prefix="bench-fanout-log-")) / "handlers.log"
    started = time.monotonic()
    results = []
    with log_file.open("w") as handler_output:
        sys.stdout = handler_output
        try:
            for n in sorted(args.participants):
                try:
                    result = measure(
                        n, args.messages, args.seed_from, args.lambda_processes, timers
                    )
                except RuntimeError as exc:  # reported; the other sizes still run
                    print(f"{n:5d}  failed: {exc}", file=sys.__stdout__, flush=True)
                    continue
                results.append(result)
                print("\n".join(report(result)), file=sys.__stdout__, flush=True)
                # Written after every size, so a run stopped at its time limit keeps its figures.
                save(results, args.messages, args.lambda_processes, time.monotonic() - started)
        finally:
            sys.stdout = sys.__stdout__
            timers.uninstall()
    print(f"(handler output in {log_file}; {time.monotonic() - started:.0f} s)")
    if len(results) > 1:
        print(f"plot: {RESULTS / 'chat_fanout.png'}")


if __name__ == "__main__":
    main()
