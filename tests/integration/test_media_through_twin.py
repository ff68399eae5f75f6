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
        # leaves the extra ones on a transport that bundling stops (docs/media-forwarding.md).
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

    # Through signaling, a webinar attendee is refused before the node is even asked. (The
    # host's join starts the session; an attendee's waits for it.)
    await host.join(mid, "Host")
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


def _media_of(client: MediaClient) -> Counter[str]:
    return Counter(client.frames)


def _still_flowing(client: MediaClient, before: Counter[str], kind: str, frames: int) -> int:
    """Tracks of `kind` that received at least `frames` more since `before`."""
    return sum(
        1
        for track_id, n in client.frames.items()
        if client.kinds[track_id] == kind and n - before[track_id] >= frames
    )


async def _wait_for(check: Any, what: str, seconds: float = 20.0) -> None:
    for _ in range(int(seconds / 0.1)):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def _sessions(node: Any) -> int:
    return int((await _health(node))["sessions"])


async def _sessions_reach(node: Any, count: int, seconds: float = 5.0) -> None:
    """Waits until the node holds `count` sessions."""
    seen = await _sessions(node)
    for _ in range(int(seconds / 0.1)):
        if seen == count:
            return
        await asyncio.sleep(0.1)
        seen = await _sessions(node)
    raise AssertionError(f"the node holds {seen} sessions, not {count}")


async def _refusal(node: Any, path: str, body: dict[str, Any]) -> tuple[int, str]:
    async with node.http_client(timeout=10.0) as http:
        response = await http.post(path, json=body)
    code = response.json().get("error", {}).get("code", "") if response.status_code != 200 else ""
    return response.status_code, code


async def _media_meeting(
    twin: Twin, title: str, names: tuple[str, ...]
) -> tuple[Api, str, list[MediaClient]]:
    """A meeting whose participants (the first is the host) publish and subscribe, and each
    receives every other's audio and video."""
    host = Api(twin.base_url)
    await host.sign_up(f"{title.lower()}-{uuid.uuid4().hex[:6]}@example.com")
    mid = (await host.create_meeting(title=title))["meeting_id"]
    clients: list[MediaClient] = []
    for name in names:
        api = host if not clients else Api(twin.base_url)
        signaling = await SignalingClient.enter(twin.ws_url, await api.join(mid, name))
        await signaling.ok("join")
        clients.append(MediaClient(signaling))
    for client in clients:
        await asyncio.wait_for(client.start(), 30)
    others = len(names) - 1
    await _wait_for(
        lambda: all(
            c.flowing("video", 10) >= others and c.flowing("audio", 10) >= others for c in clients
        ),
        "every participant receiving the others",
        40,
    )
    return host, mid, clients


async def test_a_removed_participants_media_stops_and_their_token_is_refused(
    media_twin: Twin,
) -> None:
    from townhall.auth.keys import SigningKey
    from townhall.media.tokens import MediaTokenService

    twin = media_twin
    (node,) = twin.local.media_nodes
    await _sessions_reach(node, 0, 20)  # the earlier tests' peers are gone
    host, mid, clients = await _media_meeting(twin, "Removal", ("Ada", "Bob", "Cy"))
    ada, bob, cy = clients
    try:
        assert await _sessions(node) == 3
        # Bob's own media token, still valid for two minutes after the removal below.
        token = (await bob.signaling.ok("media"))["token"]
        offer = bob.publisher.localDescription.sdp

        await ada.signaling.ok("remove", {"participant_id": bob.signaling.participant_id})
        # The node dropped Bob at once (his peers did not close anything themselves).
        await _sessions_reach(node, 2)

        # His unexpired token is refused: no way back in to subscribe or publish.
        assert await _refusal(node, "/v1/subscribe", {"token": token}) == (401, "token_revoked")
        assert await _refusal(node, "/v1/publish", {"token": token, "sdp": offer}) == (
            401,
            "token_revoked",
        )

        # Nothing reaches Bob any more, while Ada and Cy keep hearing and seeing each other.
        await asyncio.sleep(0.5)
        bob_had, ada_had, cy_had = _media_of(bob), _media_of(ada), _media_of(cy)
        await _wait_for(
            lambda: all(
                _still_flowing(c, had, "video", 10) >= 1
                and _still_flowing(c, had, "audio", 10) >= 1
                for c, had in ((ada, ada_had), (cy, cy_had))
            ),
            "Ada and Cy still receiving each other",
        )
        assert _media_of(bob) == bob_had, "media still reached the removed participant"

        # A token minted after the revocation (a new session) is accepted.
        real = SigningKey.from_file(twin.local.signing_key_file)
        fresh, _ = MediaTokenService(real).issue(
            mid, bob.signaling.participant_id, node.node_id, may_publish=False
        )
        assert await _refusal(node, "/v1/subscribe", {"token": fresh}) == (200, "")
        assert await _refusal(node, "/v1/leave", {"token": fresh}) == (200, "")
    finally:
        for client in clients:
            await client.close()
        await host.close()


async def test_ending_a_meeting_drops_its_media_and_refuses_every_token(
    media_twin: Twin,
) -> None:
    from townhall.auth.keys import SigningKey
    from townhall.media.tokens import MediaTokenService

    twin = media_twin
    (node,) = twin.local.media_nodes
    real = MediaTokenService(SigningKey.from_file(twin.local.signing_key_file))
    await _sessions_reach(node, 0, 20)  # the earlier tests' peers are gone
    host, mid, clients = await _media_meeting(twin, "Ending", ("Ada", "Bob"))
    ada, bob = clients
    try:
        tokens = [(await c.signaling.ok("media"))["token"] for c in clients]
        # A token of someone who never connected, minted before the end, is covered too.
        tokens.append(real.issue(mid, "p_latecomer", node.node_id, may_publish=True)[0])

        await ada.signaling.ok("end")
        # The clients keep their peer connections open: only the node can drop them.
        await _sessions_reach(node, 0)
        for token in tokens:
            assert await _refusal(node, "/v1/subscribe", {"token": token}) == (
                401,
                "token_revoked",
            )
        await asyncio.sleep(0.5)
        bob_had = _media_of(bob)
        await asyncio.sleep(1.0)
        assert _media_of(bob) == bob_had, "media still flowing after the meeting ended"

        # A token minted after the end (the meeting held again) is accepted.
        fresh = real.issue(mid, "p_next", node.node_id, may_publish=True)[0]
        assert await _refusal(node, "/v1/subscribe", {"token": fresh}) == (200, "")
        assert await _refusal(node, "/v1/leave", {"token": fresh}) == (200, "")
    finally:
        for client in clients:
            await client.close()
        await host.close()


async def _move(
    client: MediaClient, room_id: str, moved_by: SignalingClient | None = None
) -> MediaClient:
    """Move `client` to a breakout room (itself, or by a moderator's assign) and negotiate its
    media again on the same signaling connection, as the page does."""
    for task in client.readers:
        task.cancel()
    await client.publisher.close()
    await client.subscriber.close()
    if moved_by is None:
        await client.signaling.ok("breakout_move", {"room_id": room_id})
    else:
        await moved_by.ok(
            "breakout_assign",
            {"participant_id": client.signaling.participant_id, "room_id": room_id},
        )
    again = MediaClient(client.signaling)
    await asyncio.wait_for(again.start(), 30)
    return again


async def test_a_breakout_room_has_its_own_media_and_ending_the_meeting_drops_it(
    media_twin: Twin,
) -> None:
    twin = media_twin
    (node,) = twin.local.media_nodes
    host, _mid, clients = await _media_meeting(twin, "Breakout", ("Ada", "Bob", "Cy"))
    ada, bob, cy = clients
    try:
        setup = await ada.signaling.ok(
            "breakout_setup",
            {"rooms": ["Side"], "assignments": {bob.signaling.participant_id: 1}},
        )
        side = setup["breakouts"]["rooms"][0]["room_id"]
        await ada.signaling.ok("breakout_open", {"countdown": 0})
        clients[1] = bob = await _move(bob, side)
        # Bob, alone in the room, receives nobody; the main room no longer receives Bob.
        before = {c.signaling.name: _media_of(c) for c in clients}
        await _wait_for(
            lambda: (
                _still_flowing(ada, before["Ada"], "video", 15) == 1
                and _still_flowing(cy, before["Cy"], "video", 15) == 1
            ),
            "the main room's video between Ada and Cy",
        )
        await asyncio.sleep(0.5)
        assert bob.flowing("video", 1) == 0 and bob.flowing("audio", 1) == 0, bob.frames

        # Cy is moved in by the host: Bob and Cy now see each other, and Ada sees neither.
        clients[2] = cy = await _move(cy, side, moved_by=ada.signaling)
        await _wait_for(
            lambda: bob.flowing("video", 15) == 1 and cy.flowing("video", 15) == 1,
            "video between Bob and Cy in the breakout room",
            30,
        )
        await asyncio.sleep(0.5)  # what was in flight when they left has arrived
        quiet = _media_of(ada)
        await asyncio.sleep(1.0)
        assert _still_flowing(ada, quiet, "video", 1) == 0, "Ada still receives a moved video"
        assert bob.flowing("video", 15) == 1 and bob.flowing("audio", 15) == 1
        # Two rooms on the node: Ada's main room and the breakout room.
        assert (await _health(node))["sessions"] == 3

        # Ending the meeting drops the breakout room's media too (the peers stay open).
        await ada.signaling.ok("end")
        await _sessions_reach(node, 0, 10)
    finally:
        for client in clients:
            await client.close()
        await host.close()
