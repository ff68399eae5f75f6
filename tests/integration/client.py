"""Test clients for the twin: a real WebSocket signaling client and HTTP helpers."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from townhall.routes import SUBPROTOCOL

Message = dict[str, Any]
_ids = itertools.count(1)


def new_guest_key() -> str:
    """A guest identity, as a browser makes one (kept in its localStorage)."""
    return secrets.token_urlsafe(24)


class SignalingClient:
    """One participant's WebSocket: sends requests with ids, collects replies and events."""

    def __init__(self, ws: ClientConnection, name: str) -> None:
        self.ws = ws
        self.name = name
        self.events: list[Message] = []
        self.unmatched: list[Message] = []  # errors without a request id (malformed input)
        self.participant_id = ""
        self.session_id = ""
        self._replies: dict[str, asyncio.Future[Message]] = {}
        self._changed = asyncio.Condition()
        self.closed: asyncio.Future[tuple[int | None, str]] = (
            asyncio.get_running_loop().create_future()
        )
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(
        cls, ws_url: str, meeting_id: str, token: str, name: str = ""
    ) -> SignalingClient:
        ws = await websockets.connect(
            f"{ws_url}?meeting={meeting_id}",
            # The token rides as the second subprotocol (an empty one cannot be offered).
            subprotocols=[Subprotocol(SUBPROTOCOL), *([Subprotocol(token)] if token else [])],
            max_size=None,
            open_timeout=10,
        )
        return cls(ws, name)

    @classmethod
    async def enter(cls, ws_url: str, grant: dict[str, Any]) -> SignalingClient:
        """Connect with a join grant from the HTTP API (not yet sending 'join')."""
        client = await cls.connect(ws_url, grant["meeting_id"], grant["join_token"], grant["name"])
        client.participant_id = grant["participant_id"]
        client.session_id = grant["session_id"]
        return client

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                waiter = (
                    self._replies.pop(str(message.get("id")), None)
                    if message.get("type") in ("reply", "error")
                    else None
                )
                if waiter is not None and not waiter.done():
                    waiter.set_result(message)
                elif message.get("type") == "event":
                    self.events.append(message)
                else:
                    self.unmatched.append(message)
                async with self._changed:
                    self._changed.notify_all()
        except websockets.ConnectionClosed:
            pass
        finally:
            close = self.ws.protocol.close_rcvd
            if not self.closed.done():
                self.closed.set_result((close.code, close.reason) if close else (None, ""))
            async with self._changed:
                self._changed.notify_all()

    async def request(
        self,
        action: str,
        data: dict[str, Any] | None = None,
        *,
        request_id: str | None = None,
        timeout: float = 10,
    ) -> Message:
        prefix = "".join(ch for ch in self.name if ch.isalnum()) or "c"
        rid = request_id or f"{prefix}-{next(_ids)}"
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Message] = loop.create_future()
        self._replies[rid] = waiter
        message: dict[str, Any] = {"action": action, "id": rid}
        if data is not None:
            message["data"] = data
        await self.ws.send(json.dumps(message))
        return await asyncio.wait_for(waiter, timeout)

    async def ok(self, action: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        reply = await self.request(action, data)
        assert reply["type"] == "reply", f"{self.name} {action}: {reply}"
        result: dict[str, Any] = reply["data"]
        return result

    async def events_until_now(self, since: int) -> list[Message]:
        """The events received since index `since`, once every event committed before this
        call has arrived. Events come through the outbox after their actions replied, in
        commit order per connection: a reaction of our own, committed now, is the barrier
        (it is left out of the answer)."""
        await self.ok("react", {"emoji": "👍"})
        mine = self.participant_id

        def barrier() -> bool:
            return any(
                e["event"] == "reaction" and e["data"]["participant_id"] == mine
                for e in self.events[since:]
            )

        await self.wait_for(barrier)
        received = self.events[since:]
        last = max(i for i, e in enumerate(received) if e["event"] == "reaction")
        return received[:last]

    async def send_raw(self, text: str | bytes) -> None:
        await self.ws.send(text)

    async def next_unmatched(self, timeout: float = 10) -> Message:
        await self.wait_for(lambda: bool(self.unmatched), timeout)
        return self.unmatched.pop(0)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        async def check() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: predicate() or self.closed.done())

        await asyncio.wait_for(check(), timeout)
        if not predicate():
            raise AssertionError(f"{self.name}: connection closed before the condition held")

    async def wait_event(
        self, name: str, where: Callable[[Message], bool] = lambda e: True, timeout: float = 10
    ) -> Message:
        def found() -> Message | None:
            return next((e for e in self.events if e["event"] == name and where(e)), None)

        await self.wait_for(lambda: found() is not None, timeout)
        event = found()
        assert event is not None
        return event

    async def wait_dropped(self, participant_id: str, timeout: float = 10) -> Message:
        """The event that shows `participant_id`'s connection dropped: they stay in the room,
        shown reconnecting for the reconnect window (docs/signaling.md)."""
        return await self.wait_event(
            "participant.updated",
            lambda e: (
                e["data"]["participant"]["participant_id"] == participant_id
                and not e["data"]["participant"]["connected"]
            ),
            timeout,
        )

    def events_named(self, *names: str) -> list[Message]:
        return [e for e in self.events if e["event"] in names]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader


class Api:
    """The HTTP API as a signed-in host (or a guest when no token is set)."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=15)
        self.token: str | None = None
        self.refresh_token: str | None = None

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        return headers

    async def post(
        self, path: str, body: Any, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.http.post(path, json=body, headers=self._headers(headers))

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(path, headers=self._headers())

    async def sign_up(
        self, email: str, name: str = "Host", password: str = "correct horse 1"
    ) -> Message:
        response = await self.post(
            "/api/auth/signup", {"email": email, "password": password, "name": name}
        )
        assert response.status_code == 201, response.text
        session: Message = response.json()
        self.token = session["access_token"]
        self.refresh_token = session["refresh_token"]
        return session

    async def create_meeting(self, **fields: Any) -> Message:
        body = {
            "title": "Standup",
            "start": "2026-12-01T09:00",
            "timezone": "Europe/Paris",
            "duration_minutes": 30,
            **fields,
        }
        response = await self.post("/api/meetings", body)
        assert response.status_code == 201, response.text
        meeting: Message = response.json()
        return meeting

    async def join(
        self,
        meeting_id: str,
        name: str,
        passcode: str | None = None,
        *,
        guest_key: str | None = None,
    ) -> Message:
        """Join as the signed-in host, or as a guest: a new guest identity per call unless
        `guest_key` names one (the same person joining again)."""
        body: dict[str, Any] = {"display_name": name, "passcode": passcode}
        if self.token is None:
            body["guest_key"] = guest_key or new_guest_key()
        response = await self.post(f"/api/meetings/{meeting_id}/join", body)
        assert response.status_code == 200, response.text
        grant: Message = response.json()
        return grant

    async def close(self) -> None:
        await self.http.aclose()


async def hosted_meeting(base_url: str, **fields: Any) -> tuple[Api, str]:
    """A newly signed-up host ("Hana Host") and the id of a meeting of theirs."""
    host = Api(base_url)
    await host.sign_up(f"host-{secrets.token_hex(4)}@example.com", "Hana Host")
    return host, (await host.create_meeting(**fields))["meeting_id"]


async def entered(
    ws_url: str, api: Api, meeting_id: str, name: str
) -> tuple[SignalingClient, dict[str, Any]]:
    """Joined through the HTTP API as `name`, connected, and `join` sent: the client and the
    join reply."""
    client = await SignalingClient.enter(ws_url, await api.join(meeting_id, name))
    return client, await client.ok("join")


async def refusal(client: SignalingClient, action: str, data: dict[str, Any]) -> str:
    """The error code of an action that must be refused with a message."""
    reply = await client.request(action, data)
    assert reply["type"] == "error", (action, data, reply)
    assert reply["error"]["message"], reply
    return str(reply["error"]["code"])
