"""Media through the whole local twin: three headless aiortc participants join over the
WebSocket API, publish and subscribe through signaling (which places the meeting on a media
node and relays the SDP), and each receives the other two's audio and video from the node."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack

from infra.twin.server import TwinOptions
from tests.integration.client import Api, SignalingClient
from tests.integration.conftest import Twin, _start


@pytest.fixture(autouse=True)
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Client peers gather host candidates on 127.0.0.1 only: every packet stays on loopback
    (aioice skips loopback unless told; media_fleet.service.ice does the same for nodes)."""
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


@pytest.fixture(scope="module")
def media_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    yield from _start(tmp_path_factory, TwinOptions(media_nodes=1))


class MediaClient:
    """One participant's publish and subscribe peer connections, counting what arrives."""

    def __init__(self, signaling: SignalingClient) -> None:
        self.signaling = signaling
        # Max-bundle: with several m-lines of one kind, aiortc's default "balanced" policy
        # leaves the extra ones on a transport that bundling stops (docs/sfu.md).
        config = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        self.publisher = RTCPeerConnection(config)
        self.subscriber = RTCPeerConnection(config)
        self.frames: Counter[str] = Counter()  # per received track id
        self.kinds: dict[str, str] = {}
        self.readers: list[asyncio.Task[None]] = []
        self.subscriber.on("track", self._on_track)

    def _on_track(self, track: Any) -> None:
        self.kinds[track.id] = track.kind
        self.readers.append(asyncio.ensure_future(self._read(track)))

    async def _read(self, track: Any) -> None:
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            for _ in range(100_000):
                await track.recv()
                self.frames[track.id] += 1

    async def start(self) -> None:
        self.publisher.addTrack(AudioStreamTrack())
        self.publisher.addTrack(VideoStreamTrack())
        await self.publisher.setLocalDescription(await self.publisher.createOffer())
        answer = await self.signaling.ok(
            "media_publish", {"sdp": self.publisher.localDescription.sdp}
        )
        await self.publisher.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        offer = await self.signaling.ok("media_subscribe")
        await self.subscriber.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await self.subscriber.setLocalDescription(await self.subscriber.createAnswer())
        await self.signaling.ok("media_answer", {"sdp": self.subscriber.localDescription.sdp})

    def flowing(self, kind: str, at_least: int) -> int:
        return sum(
            1
            for track_id, n in self.frames.items()
            if self.kinds[track_id] == kind and n >= at_least
        )

    async def close(self) -> None:
        for task in self.readers:
            task.cancel()
        await self.publisher.close()
        await self.subscriber.close()
        await self.signaling.close()


async def test_three_participants_receive_each_others_audio_and_video(media_twin: Twin) -> None:
    twin = media_twin
    host = Api(twin.base_url)
    await host.sign_up(f"media-{uuid.uuid4().hex[:6]}@example.com")
    meeting = await host.create_meeting(title="Media")
    mid = meeting["meeting_id"]
    clients: list[MediaClient] = []
    try:
        for name in ("Ada", "Bob", "Cy"):
            api = host if name == "Ada" else Api(twin.base_url)
            signaling = await SignalingClient.enter(twin.ws_url, await api.join(mid, name))
            await signaling.ok("join")
            clients.append(MediaClient(signaling))
        for client in clients:
            await asyncio.wait_for(client.start(), 30)

        async def everyone_receives() -> None:
            for _ in range(300):
                if all(
                    c.flowing("video", 10) >= 2 and c.flowing("audio", 10) >= 2 for c in clients
                ):
                    return
                await asyncio.sleep(0.1)
            raise AssertionError(
                "not every participant received two videos and two audios: "
                + "; ".join(f"{c.signaling.name}: {dict(c.frames)}" for c in clients)
            )

        await asyncio.wait_for(everyone_receives(), 40)
        # Each hears and sees exactly the other two: never itself.
        for client in clients:
            assert client.flowing("video", 10) == 2, client.frames
            assert client.flowing("audio", 10) == 2, client.frames
        # The node forwarded all of it without a single decoder or encoder.
        (node,) = twin.local.media_nodes
        health = (await host.http.get(f"{node.control_url}/v1/health")).json()
        assert health["forwarded_streams"] >= 12, health
        for worker in health["workers"]:
            assert worker["codecs"] == {"decoders": 0, "encoders": 0}, health
    finally:
        for client in clients:
            await client.close()
        await host.close()
