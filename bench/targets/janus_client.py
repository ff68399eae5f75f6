"""One participant of a Janus VideoRoom, over Janus's HTTP API, from aiortc.

:func:`join_janus` joins a room: a :class:`JanusSession` (a long-poll task that pairs
asynchronous answers with their requests and records the room's publishers, and a keepalive
task), publishing on one peer connection and receiving other publishers' streams on one
multistream subscriber connection. It runs in a client process inside the server's namespace
(``bench.targets.janus_server``); docs/bench-janus.md describes the protocol and its gotchas.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx
    from aiortc import RTCConfiguration, RTCPeerConnection

KEEPALIVE_SECONDS = 15.0
"Janus drops a session after 60 s without a request (a long poll does not count): margin."
LONG_POLL_SECONDS = 45.0
"Janus answers a long poll within 30 s (an empty keepalive event); this bounds a stuck one."
SESSION_LIFETIME = 6 * 3600.0
"Hard bound on a session's background tasks, whatever the caller does."
POLL_ERRORS = 5
"Consecutive failed long polls after which a session gives up (Janus is gone)."


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
