"""Chat fan-out latency in the local twin: one participant's chat send to delivery at all the
others, for a meeting of N participants.

Every participant is a real WebSocket client on loopback. The sender sends `--messages` chats
one after another (each waits for its reply); each receiver stamps the arrival of each message.
Latency is arrival minus send, over every (message, receiver) pair.

The reference, measured in the same run, is the emulator's own floor: the same message posted
straight to the same N connections through the management API with the same thread pool, with
none of our code in the path (no DynamoDB reads or writes). The difference is our code.

    python -m bench.chat_fanout [--participants 50] [--messages 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import websockets

from infra.twin.server import LocalTwin

TARGET_P99_MS = 100.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class Receiver:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.arrivals: dict[str, float] = {}
        self.task = asyncio.create_task(self.read())

    async def read(self) -> None:
        async for raw in self.ws:
            now = time.perf_counter()
            message = json.loads(raw)
            if message.get("type") == "event" and message["event"] == "chat.message":
                self.arrivals[message["data"]["message"]["text"]] = now
            elif message.get("type") == "raw":  # the reference run's bare posts
                self.arrivals[message["text"]] = now


async def run(participants: int, messages: int) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    twin = LocalTwin.start(data)
    try:
        async with httpx.AsyncClient(base_url=twin.base_url, timeout=30) as http:
            session = (await http.post("/api/auth/signup", json={
                "email": f"bench-{uuid.uuid4().hex[:8]}@example.com",
                "password": "bench password 1", "name": "Bench"})).json()
            auth = {"authorization": f"Bearer {session['access_token']}"}
            meeting = (await http.post("/api/meetings", headers=auth, json={
                "title": "Fan-out", "start": "2026-12-01T09:00", "timezone": "UTC",
                "duration_minutes": 60})).json()
            mid = meeting["meeting_id"]
            sockets = []
            for i in range(participants):
                grant = (await http.post(f"/api/meetings/{mid}/join",
                                         json={"display_name": f"P{i}"})).json()
                ws = await websockets.connect(
                    f"{twin.ws_url}?meeting={mid}&token={grant['join_token']}", max_size=None)
                await ws.send(json.dumps({"action": "join", "id": f"join-{i}"}))
                while json.loads(await ws.recv()).get("id") != f"join-{i}":
                    pass
                sockets.append(ws)
        sender, receivers = sockets[0], [Receiver(ws) for ws in sockets[1:]]
        await asyncio.sleep(0.5)

        # Our path: a chat request through API Gateway, Lambda, DynamoDB and @connections.
        sent: dict[str, float] = {}
        reply_waiter = asyncio.Queue[float]()

        async def read_sender() -> None:
            async for raw in sender:
                if json.loads(raw).get("type") == "reply":
                    reply_waiter.put_nowait(time.perf_counter())

        sender_task = asyncio.create_task(read_sender())
        for i in range(messages):
            text = f"m{i}"
            sent[text] = time.perf_counter()
            await sender.send(json.dumps({"action": "chat", "id": f"c-{i}", "data": {"text": text}}))
            await asyncio.wait_for(reply_waiter.get(), 30)
        await asyncio.sleep(0.5)
        ours = [r.arrivals[t] - s for t, s in sent.items() for r in receivers if t in r.arrivals]
        missing = len(sent) * len(receivers) - len(ours)

        # Reference: the emulator alone, posting the same bytes to the same connections.
        client = twin.management_client()
        ids = twin.live_connection_ids()
        pool = ThreadPoolExecutor(32)
        floor_sent: dict[str, float] = {}
        for i in range(messages):
            text = f"f{i}"
            body = json.dumps({"type": "raw", "text": text}).encode()
            floor_sent[text] = time.perf_counter()
            await asyncio.get_running_loop().run_in_executor(
                None, lambda b=body: list(pool.map(
                    lambda c: client.post_to_connection(ConnectionId=c, Data=b), ids)))
        await asyncio.sleep(0.5)
        floor = [r.arrivals[t] - s for t, s in floor_sent.items() for r in receivers
                 if t in r.arrivals]
        sender_task.cancel()
        for ws in sockets:
            await ws.close()
        return {"ours": ours, "floor": floor, "missing": missing}
    finally:
        await asyncio.to_thread(twin.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=50)
    parser.add_argument("--messages", type=int, default=30)
    args = parser.parse_args()
    if not 2 <= args.participants <= 1000 or not 1 <= args.messages <= 1000:
        raise SystemExit("participants must be 2..1000 and messages 1..1000")
    result = asyncio.run(run(args.participants, args.messages))
    ours = [x * 1000 for x in result["ours"]]
    floor = [x * 1000 for x in result["floor"]]
    print(f"chat fan-out to {args.participants} participants, {args.messages} messages, "
          f"{len(ours)} deliveries ({result['missing']} missing)")
    print(f"{'path':34} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for name, values in (("ours (request → every receiver)", ours),
                         ("emulator floor (@connections only)", floor)):
        print(f"{name:34} {percentile(values, 50):8.1f} {percentile(values, 99):8.1f} "
              f"{statistics.fmean(values):8.1f}")
    print(f"ratio ours/floor: p50 {percentile(ours, 50) / percentile(floor, 50):.1f}x, "
          f"p99 {percentile(ours, 99) / percentile(floor, 99):.1f}x; "
          f"target p99 ≤ {TARGET_P99_MS:.0f} ms: {percentile(ours, 99) / TARGET_P99_MS:.2f}x of target")


if __name__ == "__main__":
    main()
