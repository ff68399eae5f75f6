"""Chat fan-out latency in the local twin: one participant's chat send to delivery at all the
others, for meetings of N participants.

The twin runs in this process; every participant is a real WebSocket client on loopback in a
child process (so the clients do not compete with the twin for one interpreter lock). The
sender sends `--messages` chats one after another, each waiting for its reply; each receiver
stamps each message's arrival. Latency is arrival minus send over every (message, receiver)
pair, on the system-wide monotonic clock both processes share.

The reference, measured in the same run, is the emulator's own floor: the same number of
posts straight to the same connections through the management API, from the same kind of
thread pool, with none of our code in the path (no DynamoDB, no Lambda). The difference between
the two is our code (and moto, which stands in for DynamoDB).

    python -m bench.chat_fanout [--participants 50 200] [--messages 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing as mp
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import websockets

from infra.twin.server import LocalTwin

TARGET_P99_MS = 100.0
SETTLE_SECONDS = 0.5


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


# -- the client side (child process) ---------------------------------------------------------


async def _clients(
    base_url: str, ws_url: str, mid: str, participants: int, messages: int, pipe: Connection
) -> None:
    arrivals: list[dict[str, float]] = [{} for _ in range(participants)]
    sockets = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        for i in range(participants):
            grant = (
                await http.post(f"/api/meetings/{mid}/join", json={"display_name": f"P{i}"})
            ).json()
            # No client pings: API Gateway does not need them, and a busy twin answers late.
            ws = await websockets.connect(
                f"{ws_url}?meeting={mid}&token={grant['join_token']}",
                max_size=None,
                ping_interval=None,
            )
            await ws.send(json.dumps({"action": "join", "id": f"join-{i}"}))
            while json.loads(await ws.recv()).get("id") != f"join-{i}":
                pass
            sockets.append(ws)
    replies: asyncio.Queue[float] = asyncio.Queue()

    async def read(index: int, ws: Any) -> None:
        async for raw in ws:
            now = time.perf_counter()
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "event" and message["event"] == "chat.message":
                arrivals[index][message["data"]["message"]["text"]] = now
            elif kind == "raw":
                arrivals[index][message["text"]] = now
            elif kind == "reply" and index == 0:
                replies.put_nowait(now)

    readers = [asyncio.create_task(read(i, ws)) for i, ws in enumerate(sockets)]
    await asyncio.sleep(SETTLE_SECONDS)
    sent: dict[str, float] = {}
    for i in range(messages):
        text = f"m{i}"
        sent[text] = time.perf_counter()
        await sockets[0].send(
            json.dumps({"action": "chat", "id": f"c-{i}", "data": {"text": text}})
        )
        await asyncio.wait_for(replies.get(), 30)
    await asyncio.sleep(SETTLE_SECONDS)
    pipe.send(("chat-done", sent))
    # The parent now posts the reference messages; wait for its word, then let them land.
    await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
    await asyncio.sleep(SETTLE_SECONDS)
    pipe.send(("arrivals", arrivals[1:]))  # the sender's own copies are not deliveries
    for task in readers:
        task.cancel()
    for ws in sockets:
        await ws.close()


def _client_process(
    base_url: str, ws_url: str, mid: str, participants: int, messages: int, pipe: Connection
) -> None:
    asyncio.run(_clients(base_url, ws_url, mid, participants, messages, pipe))


# -- the twin side (this process) --------------------------------------------------------------


def measure(twin: LocalTwin, participants: int, messages: int) -> dict[str, list[float]]:
    with httpx.Client(base_url=twin.base_url, timeout=30) as http:
        session = http.post(
            "/api/auth/signup",
            json={
                "email": f"bench-{uuid.uuid4().hex[:8]}@example.com",
                "password": "bench password 1",
                "name": "Bench",
            },
        ).json()
        meeting = http.post(
            "/api/meetings",
            headers={"authorization": f"Bearer {session['access_token']}"},
            json={
                "title": "Fan-out",
                "start": "2026-12-01T09:00",
                "timezone": "UTC",
                "duration_minutes": 60,
            },
        ).json()
    parent, child = mp.get_context("spawn").Pipe()
    process = mp.get_context("spawn").Process(
        target=_client_process,
        args=(twin.base_url, twin.ws_url, meeting["meeting_id"], participants, messages, child),
    )
    process.start()
    try:
        if not parent.poll(600):
            raise RuntimeError("the clients did not finish the chat phase in time")
        _, sent = parent.recv()
        client = twin.management_client()
        ids = twin.live_connection_ids()
        floor_sent: dict[str, float] = {}
        with ThreadPoolExecutor(32) as pool:
            for i in range(messages):
                text = f"f{i}"
                body = json.dumps({"type": "raw", "text": text}).encode()
                floor_sent[text] = time.perf_counter()
                list(
                    pool.map(
                        lambda c, b=body: client.post_to_connection(ConnectionId=c, Data=b), ids
                    )
                )
        parent.send("floor-done")
        if not parent.poll(60):
            raise RuntimeError("the clients did not report arrivals in time")
        _, arrivals = parent.recv()
    finally:
        process.join(60)
        if process.is_alive():
            process.kill()
    # Each close fans a "left" event out to everyone still there; let that settle before the
    # next meeting is measured, so one size's teardown does not load the next.
    deadline = time.monotonic() + 120
    while twin.live_connection_ids() and time.monotonic() < deadline:
        time.sleep(0.5)
    ours = [a[t] - s for t, s in sent.items() for a in arrivals if t in a]
    floor = [a[t] - s for t, s in floor_sent.items() for a in arrivals if t in a]
    return {"ours": ours, "floor": floor, "missing": [len(sent) * len(arrivals) - len(ours)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, nargs="+", default=[50])
    parser.add_argument("--messages", type=int, default=30)
    args = parser.parse_args()
    if not all(2 <= n <= 1000 for n in args.participants) or not 1 <= args.messages <= 500:
        raise SystemExit("participants must be 2..1000 and messages 1..500")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    twin = LocalTwin.start(Path(tempfile.mkdtemp(prefix="bench-fanout-")))
    try:
        print(
            f"{'meeting':>8} {'path':36} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'missing':>8}"
        )
        for n in args.participants:
            result = measure(twin, n, args.messages)
            ours = [x * 1000 for x in result["ours"]]
            floor = [x * 1000 for x in result["floor"]]
            for name, values, missing in (
                ("ours: chat request → every receiver", ours, result["missing"][0]),
                ("reference: @connections posts only", floor, 0),
            ):
                print(
                    f"{n:8d} {name:36} {percentile(values, 50):8.1f} "
                    f"{percentile(values, 99):8.1f} {statistics.fmean(values):8.1f} {missing:8d}"
                )
            print(
                f"{n:8d} ratio ours/reference: p50 {percentile(ours, 50) / percentile(floor, 50):.2f}x"
                f", p99 {percentile(ours, 99) / percentile(floor, 99):.2f}x; p99 vs target "
                f"{TARGET_P99_MS:.0f} ms: {percentile(ours, 99) / TARGET_P99_MS:.2f}x"
            )
    finally:
        twin.stop()


if __name__ == "__main__":
    main()
