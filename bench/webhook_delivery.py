"""Webhook delivery in the local twin: latency from the committed change to the receiver, and
the deliveries per second one sender invocation holds.

Latency: a host sits in a meeting while guests join and leave one after another over real
sockets; the organisation subscribes a receiver on loopback (a real HTTP server answering 204)
to `participant.joined` and `participant.left`. Each delivery's latency is its arrival at the
receiver minus the event's commit time (the body's `timestamp`, the outbox record's `at`, in
ms). The reference, in the same run, is the same events' arrival at the host's WebSocket
(the outbox's fan-out consumer): the ratio is what the webhook path (a second stream consumer,
the Organisations reads, SQS, the sender, HTTP) adds over the room's own delivery.

Throughput: `--batches` batches of 10 pending deliveries (the mapping's batch size) are handed
to the sender through the twin's Lambda Invoke API, each invocation timed from call to
answer; deliveries per second = 10 / that time.

    python -m bench.webhook_delivery [--guests 50] [--batches 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.join_storm import percentile
from infra.twin.server import LocalTwin, TwinOptions
from tests.integration.client import Api, entered, hosted_meeting
from tests.integration.webhook_receiver import Receiver
from townhall import clock
from townhall.model.webhook import Delivery
from townhall.runtime import settings
from townhall.store.webhooks import WebhookStore
from townhall.webhooks.queue import DeliveryMessage

RESULTS = Path(__file__).resolve().parent / "results"
# The receiver answers 204 on these paths (tests/integration/webhook_receiver.py).
HOOK = "/ok-latency"
THROUGHPUT_HOOK = "/ok-throughput"


def _ms(seconds: list[float]) -> dict[str, float]:
    return {
        "count": len(seconds),
        "p50_ms": round(percentile([s * 1000 for s in seconds], 50), 1),
        "p99_ms": round(percentile([s * 1000 for s in seconds], 99), 1),
    }


def _iso_to_epoch(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


async def _key(host: Api) -> httpx.AsyncClient:
    made = await host.post(
        "/api/v1/keys",
        {"name": "bench", "scopes": ["webhooks:read", "webhooks:write"], "rate_per_second": 100},
    )
    made.raise_for_status()
    return httpx.AsyncClient(
        base_url=str(host.http.base_url),
        headers={"authorization": f"Bearer {made.json()['key']}"},
        timeout=30,
    )


async def _latency(twin: LocalTwin, receiver: Receiver, guests: int) -> dict[str, Any]:
    host_api, meeting_id = await hosted_meeting(twin.base_url)
    partner = await _key(host_api)
    subscribed = await partner.post(
        "/api/v1/webhooks",
        json={"url": receiver.url(HOOK), "event_types": ["participant.joined", "participant.left"]},
    )
    subscribed.raise_for_status()
    host, _ = await entered(twin.ws_url, host_api, meeting_id, "Hana Host")
    at_host: dict[int, float] = {}  # seq -> when the host's socket had the event
    for n in range(guests):
        guest, _ = await entered(twin.ws_url, Api(twin.base_url), meeting_id, f"Guest {n}")
        pid = guest.participant_id

        def joined_by(e: dict[str, Any], p: str | None = pid) -> bool:
            return bool(e["data"]["participant"]["participant_id"] == p)

        def left_by(e: dict[str, Any], p: str | None = pid) -> bool:
            return bool(e["data"]["participant_id"] == p)

        joined = await host.wait_event("participant.joined", joined_by)
        at_host[joined["seq"]] = time.time()
        await guest.ok("leave")
        left = await host.wait_event("participant.left", left_by)
        at_host[left["seq"]] = time.time()
        await guest.close()
    expected = 2 * guests
    for _ in range(1200):  # a minute at most
        if len(receiver.at(HOOK)) >= expected:
            break
        await asyncio.sleep(0.05)
    await host.close()
    await partner.aclose()
    await host_api.close()
    arrivals = [(r.at, r.payload) for r in receiver.at(HOOK)]
    committed = {body["data"]["seq"]: _iso_to_epoch(body["timestamp"]) for _, body in arrivals}
    latencies = [at - committed[body["data"]["seq"]] for at, body in arrivals]
    ws = [at_host[seq] - at for seq, at in committed.items() if seq in at_host]
    return {
        "events": expected,
        "delivered": len(arrivals),
        "webhook": _ms(latencies),
        "reference_websocket": _ms(ws),
    }


async def _throughput(twin: LocalTwin, receiver: Receiver, batches: int) -> dict[str, Any]:
    host_api, _ = await hosted_meeting(twin.base_url)
    partner = await _key(host_api)
    created = await partner.post(
        "/api/v1/webhooks",
        json={"url": receiver.url(THROUGHPUT_HOOK), "event_types": ["session.ended"]},
    )
    created.raise_for_status()
    subscription = created.json()["subscription_id"]
    org_id = (await partner.get("/api/v1/organisation")).json()["org_id"]
    store = WebhookStore(settings().organisations_table)
    client = twin.lambda_client()
    seconds: list[float] = []
    for b in range(batches):
        records = []
        for i in range(10):
            at = clock.now_ms()
            delivery_id = f"msg_{at:013d}{secrets.token_hex(10)[:19]}"
            body = json.dumps({"type": "session.ended", "timestamp": "", "data": {"n": b * 10 + i}})
            store.add_delivery(
                Delivery(delivery_id, subscription, org_id, "session.ended", body, at)
            )
            message = DeliveryMessage(org_id, subscription, delivery_id)
            records.append({"messageId": delivery_id, "body": message.to_json()})
        started = time.perf_counter()
        answer = await asyncio.to_thread(
            client.invoke,
            FunctionName="WebhookSenderFunction",
            Payload=json.dumps({"Records": records}).encode(),
        )
        seconds.append(time.perf_counter() - started)
        assert json.loads(answer["Payload"].read()) == {"batchItemFailures": []}
    await partner.aclose()
    await host_api.close()
    per_invocation = _ms(seconds)
    return {
        "batch_size": 10,
        "invocations": per_invocation,
        "deliveries_per_second_p50": round(10 / (per_invocation["p50_ms"] / 1000), 1),
    }


async def _run(twin: LocalTwin, guests: int, batches: int) -> dict[str, Any]:
    with Receiver() as receiver:
        latency = await _latency(twin, receiver, guests)
        throughput = await _throughput(twin, receiver, batches)
    return {"latency": latency, "throughput": throughput}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guests", type=int, default=50)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--out", type=Path, default=RESULTS / "webhook_delivery.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as data:
        twin = LocalTwin.start(Path(data), options=TwinOptions())
        try:
            results = asyncio.run(_run(twin, args.guests, args.batches))
        finally:
            twin.stop()
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
