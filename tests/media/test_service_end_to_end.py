"""Two headless aiortc clients meet through the node's control API over loopback HTTP.

The control API (uvicorn, real sockets) runs with the real forwarding room
(`media_fleet.sfu.room.MeetingRoom`). Each client publishes a flat-colour camera and a tone
with its own media token, subscribes, answers the node's offer, and must decode the *other*
client's colour. A drain's "move" message reaches both. Then both leave, and the room is gone.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aioice.ice
import httpx
import pytest
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)
from av import VideoFrame
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from media_fleet.service.control_api import WorkerState, control_app
from media_fleet.service.http_server import ServedApp
from media_fleet.service.keys import TokenGate
from media_fleet.service.rooms import RoomDirectory, meeting_room_factory
from tests.media.synthetic_media import FlatVideoTrack
from townhall.auth.keys import SigningKey
from townhall.media.jwks import jwks
from townhall.media.tokens import MediaTokenService

NODE = "node-e2e"
MEETING = "m-e2e"
WAIT = 15.0


@dataclass
class Client:
    participant_id: str
    luma: int
    token: str
    publish_pc: RTCPeerConnection = field(
        default_factory=lambda: RTCPeerConnection(RTCConfiguration(iceServers=[]))
    )
    subscribe_pc: RTCPeerConnection = field(
        default_factory=lambda: RTCPeerConnection(RTCConfiguration(iceServers=[]))
    )
    # luma of the last decoded frame per mid, and frames decoded per mid
    lumas: dict[str, int] = field(default_factory=dict)
    frames: dict[str, int] = field(default_factory=dict)
    readers: list[asyncio.Task[None]] = field(default_factory=list)
    # JSON messages from the room's data channel
    messages: list[dict[str, Any]] = field(default_factory=list)

    async def join(self, http: httpx.AsyncClient, url: str) -> None:
        self.publish_pc.addTrack(AudioStreamTrack())
        self.publish_pc.addTrack(FlatVideoTrack(self.luma))
        await self.publish_pc.setLocalDescription(await self.publish_pc.createOffer())
        published = await http.post(
            f"{url}/v1/publish",
            json={"token": self.token, "sdp": self.publish_pc.localDescription.sdp},
        )
        assert published.status_code == 200, published.text
        answer = RTCSessionDescription(published.json()["sdp"], "answer")
        await self.publish_pc.setRemoteDescription(answer)

        self.subscribe_pc.on("track", self._on_track)
        self.subscribe_pc.on("datachannel", self._on_datachannel)
        offered = await http.post(f"{url}/v1/subscribe", json={"token": self.token})
        assert offered.status_code == 200, offered.text
        offer = RTCSessionDescription(offered.json()["sdp"], "offer")
        await self.subscribe_pc.setRemoteDescription(offer)
        await self.subscribe_pc.setLocalDescription(await self.subscribe_pc.createAnswer())
        answered = await http.post(
            f"{url}/v1/subscribe/answer",
            json={"token": self.token, "sdp": self.subscribe_pc.localDescription.sdp},
        )
        assert answered.status_code == 200, answered.text

    def sees(self, luma: int) -> bool:
        return any(
            abs(seen - luma) < 20 and self.frames[mid] >= 5 for mid, seen in self.lumas.items()
        )

    async def close(self) -> None:
        for reader in self.readers:
            reader.cancel()
        await asyncio.wait_for(self.publish_pc.close(), 5)
        await asyncio.wait_for(self.subscribe_pc.close(), 5)

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        @channel.on("message")
        def on_message(message: str | bytes) -> None:
            self.messages.append(json.loads(message))

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "video":
            return
        mid = next(t.mid for t in self.subscribe_pc.getTransceivers() if t.receiver.track is track)
        assert mid is not None

        async def read() -> None:
            while True:
                frame = await track.recv()
                if isinstance(frame, VideoFrame):
                    plane = frame.planes[0]
                    centre = plane.line_size * (frame.height // 2) + frame.width // 2
                    self.lumas[mid] = bytes(plane)[centre]
                    self.frames[mid] = self.frames.get(mid, 0) + 1

        self.readers.append(asyncio.ensure_future(read()))


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gather only 127.0.0.1 host candidates (aioice skips loopback by default)."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


@dataclass
class Node:
    url: str
    rooms: RoomDirectory
    tokens: MediaTokenService


@pytest.fixture
async def node(loopback_only: None) -> AsyncIterator[Node]:
    key = SigningKey.from_private_key(Ed25519PrivateKey.generate())
    document = json.loads(json.dumps(jwks(key)))
    rooms = RoomDirectory(
        meeting_room_factory(video_slots=2, audio_slots=1, announced_host="127.0.0.1")
    )
    app = control_app(TokenGate(lambda: document, NODE), rooms, WorkerState(node_id=NODE))
    served = ServedApp(app, socket.create_server(("127.0.0.1", 0)))
    await served.start()
    try:
        yield Node(f"http://127.0.0.1:{served.port}", rooms, MediaTokenService(key))
    finally:
        await asyncio.wait_for(rooms.close_all(), 10)
        served.stop()
        await served.wait_stopped()


async def test_two_clients_see_each_other_through_the_control_api(node: Node) -> None:
    a, b = (
        Client(pid, luma, node.tokens.issue(MEETING, pid, NODE, may_publish=True)[0])
        for pid, luma in (("alice", 40), ("bob", 210))
    )
    try:
        async with httpx.AsyncClient(timeout=10.0, trust_env=False) as http:
            await a.join(http, node.url)
            await b.join(http, node.url)
            assert node.rooms.meetings() == [MEETING]
            assert node.rooms.sessions() == 2

            async def both_see_each_other() -> None:
                while not (a.sees(210) and b.sees(40)):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)

            try:
                await asyncio.wait_for(both_see_each_other(), WAIT)
            except TimeoutError:
                pytest.fail(f"not seen in time: alice {a.lumas}, bob {b.lumas}")
            # Nobody is shown their own picture.
            assert not a.sees(40) and not b.sees(210)

            # A drain tells every client on the data channel to ask signaling for a new node.
            await node.rooms.tell_clients_to_move()

            async def both_told_to_move() -> None:
                while not all({"type": "move"} in c.messages for c in (a, b)):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(both_told_to_move(), WAIT)

            health = (await http.get(f"{node.url}/v1/health")).json()
            assert health["sessions"] == 2 and health["forwarded_streams"] >= 2

            for client in (a, b):
                left = await http.post(f"{node.url}/v1/leave", json={"token": client.token})
                assert left.status_code == 200
            assert len(node.rooms) == 0
    finally:
        await a.close()
        await b.close()
