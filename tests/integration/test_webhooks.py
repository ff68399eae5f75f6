"""Partner webhooks over the real twin (docs/partners.md#webhooks): a session driven by real
sockets reaches a real HTTP receiver on loopback as signed Standard Webhooks, each signature
checked by the receiver's own implementation of the scheme; 500s are retried on the fast
clock; a receiver that never recovers exhausts the schedule, is dead-lettered and disabled
with a notice; replay sends the failed deliveries again. Bad destinations (unreachable, slow,
redirects to private addresses, a name resolving to one) block nothing and lose nothing."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Any

import httpx
import pytest

from infra.twin.queues import queue_depth
from infra.twin.server import TwinOptions
from tests.integration.client import Api, SignalingClient, entered, hosted_meeting
from tests.integration.conftest import Twin, _start
from tests.integration.webhook_receiver import Receiver, verify
from townhall import functions

# The whole 27-hour schedule in about a second: waits scaled by 1e-5 (SQS delays round to 0).
TIME_SCALE = 1e-5
ATTEMPT_TIMEOUT = 1.0
SESSION_TYPES = [
    "session.started",
    "session.ended",
    "participant.joined",
    "participant.left",
    "poll.closed",
    "question.answered",
]


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    options = TwinOptions(
        webhook_retry_time_scale=TIME_SCALE, webhook_timeout_seconds=ATTEMPT_TIMEOUT
    )
    yield from _start(tmp_path_factory, options)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


async def _until(check: Callable[[], Awaitable[Any]], timeout: float = 15, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.05)


class Partner:
    """A host who owns their organisation, and a key of it with the webhook scopes."""

    def __init__(self, host: Api, meeting_id: str, http: httpx.AsyncClient) -> None:
        self.host = host
        self.meeting_id = meeting_id
        self.http = http

    @classmethod
    async def make(cls, twin: Twin) -> Partner:
        host, meeting_id = await hosted_meeting(twin.base_url)
        response = await host.post(
            "/api/v1/keys",
            {
                "name": "hooks",
                "scopes": ["webhooks:read", "webhooks:write"],
                "rate_per_second": 100,
            },
        )
        assert response.status_code == 201, response.text
        http = httpx.AsyncClient(
            base_url=twin.base_url,
            headers={"authorization": f"Bearer {response.json()['key']}"},
            timeout=15,
        )
        return cls(host, meeting_id, http)

    async def subscribe(self, url: str, types: list[str]) -> tuple[str, str]:
        response = await self.http.post("/api/v1/webhooks", json={"url": url, "event_types": types})
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["secret"].startswith("whsec_")
        return body["subscription_id"], body["secret"]

    async def deliveries(self, sid: str, status: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, str | int] = {"limit": 100, **({"status": status} if status else {})}
        response = await self.http.get(f"/api/v1/webhooks/{sid}/deliveries", params=params)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def subscription(self, sid: str) -> dict[str, Any]:
        response = await self.http.get(f"/api/v1/webhooks/{sid}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def close(self) -> None:
        await self.http.aclose()
        await self.host.close()


async def _session(twin: Twin, partner: Partner) -> tuple[SignalingClient, SignalingClient]:
    """Host and a guest in a session: started, joined, a poll closed, a question answered,
    the guest gone, the session ended. Returns the clients (closed by the caller)."""
    host, _ = await entered(twin.ws_url, partner.host, partner.meeting_id, "Hana Host")
    guest, _ = await entered(twin.ws_url, Api(twin.base_url), partner.meeting_id, "Gus")
    await host.wait_event("participant.joined", timeout=5)
    poll = await host.ok("poll_create", {"question": "Ship it?", "options": ["yes", "no"]})
    await guest.ok("poll_vote", {"poll_id": poll["poll_id"], "choices": [0]})
    await host.ok("poll_close", {"poll_id": poll["poll_id"]})
    question = await guest.ok("qa_ask", {"text": "When?"})
    await host.ok("qa_answer", {"question_id": question["question_id"], "text": "Friday"})
    # An upvote after the answer is one more qa.updated: not a second question.answered.
    await host.ok("qa_upvote", {"question_id": question["question_id"]})
    await guest.ok("leave")
    await host.wait_event("participant.left", timeout=5)
    await host.ok("end")
    return host, guest


async def test_a_session_reaches_the_receiver_signed_in_order(
    twin: Twin,
    receiver: Receiver,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    partner = await Partner.make(twin)
    path = f"/ok-{secrets.token_hex(3)}"
    sid, secret = await partner.subscribe(receiver.url(path), SESSION_TYPES)
    host, guest = await _session(twin, partner)
    try:
        # host joined, guest joined: two participant.joined.
        await _until(lambda: _count(receiver, path, 7), what="seven events")
        received = receiver.at(path)
        for r in received:
            assert verify(secret, r.headers, r.body), r.headers
            assert not verify("whsec_" + "A" * 44, r.headers, r.body)
        payloads = [r.payload for r in received]
        types = sorted(p["type"] for p in payloads)
        assert types == sorted([*SESSION_TYPES, "participant.joined"]), types
        # Ordered by `seq` (what docs promise receivers can order by), the session reads as it
        # happened: started first, ended last, the guest's join before their leave.
        by_seq = [p["type"] for p in sorted(payloads, key=lambda p: p["data"]["seq"])]
        assert by_seq[0] == "session.started" and by_seq[-1] == "session.ended"
        assert by_seq.index("poll.closed") < by_seq.index("question.answered")
        assert by_seq.index("participant.left") > by_seq.index("question.answered")
        assert {p["data"]["meeting_id"] for p in payloads} == {partner.meeting_id}
        assert len({r.webhook_id for r in received}) == len(received)  # one id per event
        answered = next(p for p in payloads if p["type"] == "question.answered")
        assert answered["data"]["question"]["answer"] == "Friday"
        closed = next(p for p in payloads if p["type"] == "poll.closed")
        assert closed["data"]["poll"]["counts"] == [1, 0]
        log = await partner.deliveries(sid)
        assert len(log) == 7 and all(d["status"] == "succeeded" for d in log)
        assert all(d["attempts"] == 1 and d["attempt_log"][0]["status_code"] == 204 for d in log)
        # No log line (the handlers' JSON lines, the twin's loggers) holds the secret or a
        # signature.
        out, err = capfd.readouterr()
        logged = out + err + caplog.text
        assert "webhook attempt" in logged  # the sender's lines are in what was captured
        assert secret not in logged and secret.removeprefix("whsec_") not in logged
        signatures = {s for r in received for s in r.headers["webhook-signature"].split(" ")}
        assert not any(sig.removeprefix("v1,") in logged for sig in signatures)
    finally:
        await host.close()
        await guest.close()
        await partner.close()


async def _count(receiver: Receiver, path: str, n: int) -> bool:
    return len(receiver.at(path)) >= n


async def test_500s_are_retried_on_the_schedule_until_the_receiver_recovers(
    twin: Twin, receiver: Receiver
) -> None:
    partner = await Partner.make(twin)
    path = f"/fail2-{secrets.token_hex(3)}"
    sid, secret = await partner.subscribe(receiver.url(path), ["session.started"])
    # Mid-rotation: every attempt is signed with the old secret and the new one.
    rotated = await partner.http.post(f"/api/v1/webhooks/{sid}/rotate-secret")
    new_secret = rotated.json()["secret"]
    host, _ = await entered(twin.ws_url, partner.host, partner.meeting_id, "Hana Host")
    try:
        await _until(lambda: _count(receiver, path, 3), what="three attempts")
        attempts = receiver.at(path)
        assert [r.status for r in attempts] == [500, 500, 204]
        assert len({r.webhook_id for r in attempts}) == 1  # one delivery, tried three times
        assert all(verify(secret, r.headers, r.body) for r in attempts)
        assert all(verify(new_secret, r.headers, r.body) for r in attempts)
        assert all(len(r.headers["webhook-signature"].split(" ")) == 2 for r in attempts)
        [delivery] = await _until(
            lambda: _succeeded(partner, sid), what="the log to show the success"
        )
        assert delivery["attempts"] == 3
        assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 500, 204]
        await asyncio.sleep(0.3)
        assert len(receiver.at(path)) == 3  # nothing after the success
    finally:
        await host.close()
        await partner.close()


async def _succeeded(partner: Partner, sid: str) -> list[dict[str, Any]] | None:
    log = await partner.deliveries(sid)
    return log if log and all(d["status"] == "succeeded" for d in log) else None


async def test_a_storm_of_500s_is_dead_lettered_disabled_noticed_and_replayed(
    twin: Twin, receiver: Receiver
) -> None:
    partner = await Partner.make(twin)
    down = f"/down-{secrets.token_hex(3)}"
    notices = f"/ok-notices-{secrets.token_hex(3)}"
    sid, secret = await partner.subscribe(receiver.url(down), SESSION_TYPES)
    await partner.subscribe(receiver.url(notices), ["webhook.disabled"])
    dead_url = twin.local.queue_urls[functions.WEBHOOK_DELIVERIES.dead_letter_env_var]
    dead_before = queue_depth(twin.local.dynamodb_endpoint, dead_url)
    started = time.monotonic()
    host, _ = await entered(twin.ws_url, partner.host, partner.meeting_id, "Hana Host")
    guest, _ = await entered(twin.ws_url, Api(twin.base_url), partner.meeting_id, "Gus")
    try:
        # The outbox is not held up: the room hears the join at once while the webhooks fail.
        await host.wait_event("participant.joined", timeout=3)
        assert time.monotonic() - started < 3
        failed = await _until(lambda: _all_failed(partner, sid, 3), timeout=20, what="failures")
        # The first to exhaust the schedule (8 attempts) disables the subscription; the others
        # stop there, their last attempt logged as refused for that.
        codes = [[a["status_code"] for a in d["attempt_log"]] for d in failed]
        assert [500] * 8 in codes, codes
        for delivery in failed:
            log = delivery["attempt_log"]
            assert all(a["status_code"] == 500 for a in log[:-1])
            assert log[-1]["status_code"] == 500 or "disabled" in log[-1]["error"], log
        # Every attempt that was sent reached the receiver, signed; nothing else did.
        posted = sum(code == 500 for attempts in codes for code in attempts)
        assert len(receiver.at(down)) == posted
        assert all(verify(secret, r.headers, r.body) for r in receiver.at(down))
        state = await partner.subscription(sid)
        assert state["enabled"] is False and "every attempt failed" in state["disabled_reason"]
        [notice] = await _until(lambda: _received(receiver, notices, 1), what="the notice")
        assert notice.payload["type"] == "webhook.disabled"
        assert notice.payload["data"]["subscription_id"] == sid
        assert queue_depth(twin.local.dynamodb_endpoint, dead_url) >= dead_before + 1
        # Disabled, it is given nothing new: the guest's leave is neither sent nor logged.
        await guest.ok("leave")
        await host.wait_event("participant.left", timeout=3)
        await asyncio.sleep(0.5)
        assert len(await partner.deliveries(sid)) == 3
        assert len(receiver.at(down)) == posted

        # Replay: refused while disabled, then one delivery, then every failed one.
        replay_all = f"/api/v1/webhooks/{sid}/replay-failed"
        assert (await partner.http.post(replay_all)).status_code == 409
        ok_path = f"/ok-replayed-{secrets.token_hex(3)}"
        update = {"url": receiver.url(ok_path), "event_types": SESSION_TYPES, "enabled": True}
        response = await partner.http.put(f"/api/v1/webhooks/{sid}", json=update)
        assert response.status_code == 200 and response.json()["enabled"] is True, response.text
        ids = [d["delivery_id"] for d in await partner.deliveries(sid, "failed")]
        one = await partner.http.post(f"/api/v1/webhooks/{sid}/deliveries/{ids[0]}/replay")
        assert one.status_code == 200 and one.json()["status"] == "pending", one.text
        again = await partner.http.post(f"/api/v1/webhooks/{sid}/deliveries/{ids[0]}/replay")
        assert again.status_code in (200, 409)  # 409 once the first replay is no longer failed
        response = await partner.http.post(replay_all)
        assert response.status_code == 200, response.text
        await _until(lambda: _received(receiver, ok_path, 3), what="the replays")
        replayed = receiver.at(ok_path)
        assert sorted(r.webhook_id for r in replayed) == sorted(ids)  # the same ids, once each
        assert all(verify(secret, r.headers, r.body) for r in replayed)
        await _until(lambda: _succeeded(partner, sid), what="replays logged")
    finally:
        await host.close()
        await guest.close()
        await partner.close()


async def _all_failed(partner: Partner, sid: str, n: int) -> list[dict[str, Any]] | None:
    log = await partner.deliveries(sid)
    return log if len(log) >= n and all(d["status"] == "failed" for d in log) else None


async def _received(receiver: Receiver, path: str, n: int) -> list[Any] | None:
    found = receiver.at(path)
    return found if len(found) >= n else None


async def test_bad_destinations_block_nothing_and_lose_nothing(
    twin: Twin, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    partner = await Partner.make(twin)
    good = f"/ok-good-{secrets.token_hex(3)}"
    closed_port = _closed_port()
    bad = {
        "unreachable": f"http://127.0.0.1:{closed_port}/hook",
        "slow": receiver.url("/slow"),
        "to-metadata": receiver.url("/to-metadata"),
        "to-trap": receiver.url("/to-trap"),
    }
    ids = {
        name: (await partner.subscribe(url, ["session.started"]))[0] for name, url in bad.items()
    }
    await partner.subscribe(receiver.url(good), ["session.started"])
    # Production's rules from here on: no loopback receivers (the good one is now refused too,
    # so it is checked before the switch below).
    host, _ = await entered(twin.ws_url, partner.host, partner.meeting_id, "Hana Host")
    try:
        await _until(lambda: _received(receiver, good, 1), what="the good receiver")
        errors = {}
        for name, sid in ids.items():
            [delivery] = await _until(partial(_tried, partner, sid), what=name)
            errors[name] = delivery["attempt_log"][0]
        assert errors["unreachable"]["status_code"] == 0
        assert "Connection" in errors["unreachable"]["error"]
        assert errors["slow"]["status_code"] == 0 and "timed out" in errors["slow"]["error"]
        assert errors["to-metadata"]["status_code"] == 302
        assert "redirects are not followed" in errors["to-metadata"]["error"]
        assert errors["to-trap"]["status_code"] == 307
        assert receiver.at("/trap") == []
    finally:
        await host.close()

    # Without the twin's loopback allowance (as in AWS), a name that resolves to loopback
    # (`vm`, in /etc/hosts) is refused before any connection, with the reason in the log.
    private, _ = await partner.subscribe(
        f"https://vm:{receiver.port}/ok-never", ["session.started"]
    )
    monkeypatch.delenv(functions.ENV_WEBHOOK_ALLOW_LOOPBACK)
    meeting = await partner.host.create_meeting()
    host, _ = await entered(twin.ws_url, partner.host, meeting["meeting_id"], "Hana Host")
    try:
        [delivery] = await _until(partial(_tried, partner, private), what="the private name")
        error = delivery["attempt_log"][0]["error"]
        assert "resolves to a non-public address (127.0.0.1)" in error, error
        assert receiver.at("/ok-never") == []
        # Nothing lost: each subscription logged one delivery per session start it took.
        for name, sid in ids.items():
            assert len(await partner.deliveries(sid)) >= 1, name
    finally:
        await host.close()
        await partner.close()


async def _tried(partner: Partner, sid: str, n: int = 1) -> list[dict[str, Any]] | None:
    log = await partner.deliveries(sid)
    tried = [d for d in log if d["attempt_log"]]
    return tried if len(tried) >= n else None


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_bad_subscriptions_are_refused_and_write_nothing(twin: Twin) -> None:
    partner = await Partner.make(twin)
    try:
        cases: list[dict[str, Any]] = [
            {"url": "ftp://example.com/hook", "event_types": ["session.started"]},
            {"url": "https://user:pw@example.com/", "event_types": ["session.started"]},
            {"url": "https://169.254.169.254/latest", "event_types": ["session.started"]},
            {"url": "https://10.0.0.7/hook", "event_types": ["session.started"]},
            {"url": "https://[::ffff:10.0.0.7]/hook", "event_types": ["session.started"]},
            {"url": "https://example.com/" + "a" * 1000, "event_types": ["session.started"]},
            {"url": "https://exa mple.com/", "event_types": ["session.started"]},
            {"url": "https://example.com/", "event_types": ["chat.message"]},
            {"url": "https://example.com/", "event_types": []},
            {"url": "https://example.com/", "event_types": ["session.started"], "x": 1},
        ]
        for body in cases:
            response = await partner.http.post("/api/v1/webhooks", json=body)
            assert response.status_code == 422, (body, response.text)
            assert response.json()["error"]["code"] == "invalid_input"
        assert (await partner.http.get("/api/v1/webhooks")).json()["items"] == []
        # A key without the scope, another organisation's id: 403, 404.
        other = await Partner.make(twin)
        sid, _ = await other.subscribe("https://example.com/hook", ["session.ended"])
        assert (await partner.http.get(f"/api/v1/webhooks/{sid}")).status_code == 404
        assert (await partner.http.delete(f"/api/v1/webhooks/{sid}")).status_code == 404
        reader = await partner.host.post(
            "/api/v1/keys", {"name": "r", "scopes": ["webhooks:read"], "rate_per_second": 10}
        )
        headers = {"authorization": f"Bearer {reader.json()['key']}"}
        refused = await partner.http.post(
            "/api/v1/webhooks",
            json={"url": "https://example.com/", "event_types": ["session.ended"]},
            headers=headers,
        )
        assert refused.status_code == 403
        assert (await other.subscription(sid))["url"] == "https://example.com/hook"
        # Rotation: a new secret, the old one still listed (it signs for a day).
        rotated = await other.http.post(f"/api/v1/webhooks/{sid}/rotate-secret")
        assert rotated.status_code == 200 and rotated.json()["secret"].startswith("whsec_")
        secrets_now = (await other.subscription(sid))["secrets"]
        assert len(secrets_now) == 2 and secrets_now[0]["expires_at"] is not None
        assert "whsec_" not in (await other.http.get("/api/v1/webhooks")).text
        await other.close()
    finally:
        await partner.close()
