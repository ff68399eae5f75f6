"""Draining a media node moves its meeting: the node tells its clients to move, placement stops
choosing it, and the next negotiation lands the meeting on another node."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from infra.twin.server import TwinOptions
from tests.integration.client import Api, SignalingClient
from tests.integration.conftest import Twin, _start


@pytest.fixture(autouse=True)
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    import aioice.ice

    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


@pytest.fixture(scope="module")
def two_node_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    yield from _start(tmp_path_factory, TwinOptions(media_nodes=2))


async def _subscribe(signaling: SignalingClient) -> tuple[RTCPeerConnection, list[Any]]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    messages: list[Any] = []

    @pc.on("datachannel")
    def on_channel(channel: Any) -> None:
        channel.on("message", lambda raw: messages.append(json.loads(raw)))

    offer = await signaling.ok("media_subscribe")
    await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    await signaling.ok("media_answer", {"sdp": pc.localDescription.sdp})
    return pc, messages


async def test_drain_moves_the_meeting_to_another_node(two_node_twin: Twin) -> None:
    twin = two_node_twin
    host = Api(twin.base_url)
    await host.sign_up(f"drain-{uuid.uuid4().hex[:6]}@example.com")
    meeting = await host.create_meeting(title="Drain")
    signaling = await SignalingClient.enter(
        twin.ws_url, await host.join(meeting["meeting_id"], "Ada")
    )
    await signaling.ok("join")
    first = await signaling.ok("media")
    pc, messages = await _subscribe(signaling)
    try:
        for _ in range(100):  # the data channel opens once DTLS and SCTP are up
            if pc.connectionState == "connected":
                break
            await asyncio.sleep(0.1)
        assert pc.connectionState == "connected"
        node = next(n for n in twin.local.media_nodes if n.node_id == first["node_id"])
        stopping = asyncio.get_running_loop().run_in_executor(None, node.stop)  # SIGTERM

        for _ in range(100):
            if {"type": "move"} in messages:
                break
            await asyncio.sleep(0.1)
        assert {"type": "move"} in messages, messages
        await pc.close()  # the client moves: its session on the old node ends
        await asyncio.wait_for(stopping, 20)

        second = await signaling.ok("media")
        assert second["node_id"] != first["node_id"]
        pc, _ = await _subscribe(signaling)  # and negotiates with the new node
    finally:
        await pc.close()
        await signaling.close()
        await host.close()
