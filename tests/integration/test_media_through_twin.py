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


async def _health(node: Any) -> dict[str, Any]:
    """The node's /v1/health over its TLS front, trusting only the certificate it registered."""
    async with node.http_client() as http:
        answer: dict[str, Any] = (await http.get("/v1/health")).json()
        return answer


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
        health = await _health(node)
        assert health["forwarded_streams"] >= 12, health
        for worker in health["workers"]:
            assert worker["codecs"] == {"decoders": 0, "encoders": 0, "decoder_threads": 0}, health

        # Clients that just close (no leave) free their sessions on the node all the same.
        for client in clients:
            await client.close()
        clients.clear()
        for _ in range(150):
            health = await _health(node)
            if health["sessions"] == 0:
                break
            await asyncio.sleep(0.1)
        assert health["sessions"] == 0 and health["forwarded_streams"] == 0, health
    finally:
        for client in clients:
            await client.close()
        await host.close()


class SignalingRoom:
    """The room API of tests/media/test_sfu_room.py, spoken through the twin's signaling: the
    same aiortc clients, but every negotiation goes WebSocket → Lambda → node control API."""

    def __init__(self) -> None:
        self.signaling: dict[str, SignalingClient] = {}

    async def publish(self, participant_id: str, offer_sdp: str) -> str:
        reply = await self.signaling[participant_id].ok("media_publish", {"sdp": offer_sdp})
        return str(reply["sdp"])

    async def subscribe(self, participant_id: str) -> str:
        return str((await self.signaling[participant_id].ok("media_subscribe"))["sdp"])

    async def accept_answer(self, participant_id: str, answer_sdp: str) -> None:
        await self.signaling[participant_id].ok("media_answer", {"sdp": answer_sdp})


async def test_speaker_change_moves_the_full_layer_and_brings_a_keyframe(
    media_twin: Twin,
) -> None:
    from tests.media.test_sfu_room import LOUD, LUMA, Client, Decoded, near, wait_until

    twin = media_twin
    host = Api(twin.base_url)
    await host.sign_up(f"speak-{uuid.uuid4().hex[:6]}@example.com")
    meeting = await host.create_meeting(title="Speakers")
    room = SignalingRoom()
    clients: dict[str, Client] = {}
    try:
        for label in ("a", "b", "c"):
            api = host if label == "a" else Api(twin.base_url)
            signaling = await SignalingClient.enter(
                twin.ws_url, await api.join(meeting["meeting_id"], label.upper())
            )
            await signaling.ok("join")
            pid = signaling.participant_id
            room.signaling[pid] = signaling
            # a and c send two layers: full 320x240 and a 160x120 clone.
            clients[label] = Client(pid, LUMA[label], low_layer=label in ("a", "c"))
        a, b, c = clients["a"], clients["b"], clients["c"]
        a.tone.amplitude = LOUD
        for client in (a, b, c):
            await asyncio.wait_for(client.join(room), 30)  # type: ignore[arg-type]

        def speaker_is(client: Client, pid: str) -> bool:
            speaker = client.of_type("speaker")
            slots = client.of_type("slots")
            return (
                speaker[-1:] == [{"type": "speaker", "participant_id": pid}]
                and bool(slots)
                and slots[-1]["video"][0]["participant_id"] == pid
            )

        await wait_until(lambda: speaker_is(b, a.participant_id), "a as the speaker at b", 20)
        slot0 = b.of_type("slots")[-1]["video"][0]["mid"]
        await wait_until(
            lambda: (
                near(b.decoded.get(slot0, Decoded()).luma, LUMA["a"])
                and b.decoded[slot0].width == 320
            ),
            "b decoding a's full layer in the speaker slot",
            20,
        )

        loop = asyncio.get_running_loop()
        a.tone.amplitude, c.tone.amplitude = 0, LOUD
        changed_at = loop.time()
        await wait_until(lambda: speaker_is(b, c.participant_id), "c as the speaker at b", 20)
        await wait_until(
            lambda: any(ssrc == c.ssrc(c.camera) and t > changed_at for ssrc, t in c.plis),
            "a PLI at c's camera",
        )
        await wait_until(
            lambda: any(mid == slot0 and t > changed_at for mid, t in b.keyframes),
            "c's keyframe in b's speaker slot",
        )
        await wait_until(
            lambda: near(b.decoded[slot0].luma, LUMA["c"]) and b.decoded[slot0].width == 320,
            "b decoding c's full layer in the speaker slot",
        )
        # a moved to a thumbnail, which carries a's low layer.
        thumbnail = next(
            v["mid"]
            for v in b.of_type("slots")[-1]["video"][1:]
            if v["participant_id"] == a.participant_id
        )
        await wait_until(
            lambda: (
                near(b.decoded.get(thumbnail, Decoded()).luma, LUMA["a"])
                and b.decoded[thumbnail].width == 160
            ),
            "b decoding a's low layer in a thumbnail",
        )
    finally:
        for client in clients.values():
            await client.close()
        for signaling in room.signaling.values():
            await signaling.close()
        await host.close()


async def test_the_node_refuses_bad_media_tokens_and_view_only_publishers(
    media_twin: Twin,
) -> None:
    import time

    from townhall.auth.keys import SigningKey
    from townhall.media.tokens import MediaTokenService

    twin = media_twin
    (node,) = twin.local.media_nodes
    host = Api(twin.base_url)
    await host.sign_up(f"tok-{uuid.uuid4().hex[:6]}@example.com")
    meeting = await host.create_meeting(title="Tokens", kind="webinar")
    mid = meeting["meeting_id"]
    real = SigningKey.from_file(twin.local.signing_key_file)
    forged = MediaTokenService(SigningKey.from_secret_string("guess")).issue(
        mid, "p_x", node.node_id, may_publish=True
    )[0]
    expired = MediaTokenService(real, clock=lambda: time.time() - 600).issue(
        mid, "p_x", node.node_id, may_publish=True
    )[0]
    other_node = MediaTokenService(real).issue(mid, "p_x", "another-node", may_publish=True)[0]
    viewer = MediaTokenService(real).issue(mid, "p_x", node.node_id, may_publish=False)[0]
    offer = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"

    def meetings(health: dict[str, Any]) -> int:
        return sum(int(w["meetings"]) for w in health["workers"])

    before = await _health(node)
    for token, status in (
        (forged, 401),
        (expired, 401),
        (other_node, 401),
        ("", 400),
        (viewer, 403),
    ):
        async with node.http_client() as http:  # TLS, pinned to the node's certificate
            response = await http.post("/v1/publish", json={"token": token, "sdp": offer})
        assert response.status_code == status, (status, response.text)
        assert response.json()["error"]["message"]

    # Through signaling, a webinar attendee is refused before the node is even asked.
    attendee = await SignalingClient.enter(twin.ws_url, await Api(twin.base_url).join(mid, "V"))
    await attendee.ok("join")
    refused = await attendee.request("media_publish", {"sdp": offer})
    assert refused["type"] == "error" and refused["error"]["code"] == "forbidden"
    health = await _health(node)
    # Nothing was created by any refused call.
    assert meetings(health) == meetings(before) and health["sessions"] == before["sessions"]
    await attendee.close()
    await host.close()


async def test_each_meeting_gets_its_own_number_of_camera_slots(media_twin: Twin) -> None:
    twin = media_twin
    host = Api(twin.base_url)
    await host.sign_up(f"slots-{uuid.uuid4().hex[:6]}@example.com")
    counts = {}
    for slots in (2, 9):
        meeting = await host.create_meeting(title=f"{slots} slots", video_slots=slots)
        signaling = await SignalingClient.enter(
            twin.ws_url, await host.join(meeting["meeting_id"], "Ada")
        )
        await signaling.ok("join")
        offer = (await signaling.ok("media_subscribe"))["sdp"]
        counts[slots] = (offer.count("m=video"), offer.count("m=audio"))
        await signaling.ok("leave")
        await signaling.close()
    # camera slots + 1 screen slot, and 3 audio slots, whatever the meeting size
    assert counts == {2: (3, 3), 9: (10, 3)}
    await host.close()
