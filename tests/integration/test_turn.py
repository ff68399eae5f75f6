"""TURN through the twin's coturn: a Chromium page whose UDP to the media node is dropped joins
through TURN over TLS and sends and receives video; coturn refuses expired and forged
credentials.

The page runs in a network namespace this test makes (a veth pair, 10.203.N.0/24; the twin,
its media node and coturn listen on the root side's address), where nftables drops all UDP to
the twin's address and TCP to coturn's plain port: the only way to the node is TURN over TLS.
The page's Chromium trusts the twin's CA (`turn/ca.pem`) through its NSS store, as a
developer trusts a local CA. The other participant is an aiortc peer on the root side.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aioice.ice
import aioice.stun
import aioice.turn
import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

from bench.join_time import RECORD_PEERS, SELECTED_CANDIDATES
from infra.twin.server import TwinOptions
from tests.integration.client import Api, SignalingClient
from tests.integration.conftest import Twin, _start
from tests.integration.namespaces import (
    Namespace,
    chromium_inside,
    fence,
    missing_tools,
    network_namespace,
)
from tests.integration.room_pages import join, new_person, room_args, sees_remote_video
from tests.integration.test_media_through_twin import MediaClient
from townhall.media.turn import TurnServers


@pytest.fixture(scope="module")
def namespace() -> Iterator[Namespace]:
    missing = missing_tools()
    if missing:
        pytest.fail(f"the TURN test needs {', '.join(missing)}: `make system-deps`, as root")
    with network_namespace() as ns:
        yield ns


@pytest.fixture(scope="module")
def turn_twin(namespace: Namespace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    yield from _start(tmp_path_factory, TwinOptions(media_nodes=1, turn=True), host=namespace.host)


@pytest.fixture(autouse=True)
def node_side_ice(monkeypatch: pytest.MonkeyPatch, namespace: Namespace) -> None:
    """The aiortc participant gathers on the root side's address only."""
    monkeypatch.setattr(
        aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: [namespace.host]
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fenced_browser(
    chromium: str, namespace: Namespace, turn_twin: Twin, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Browser]:
    """Chromium inside the namespace, with UDP to the twin dropped and coturn's plain TCP
    port closed, trusting the twin's CA."""
    assert turn_twin.local.turn is not None
    turn = turn_twin.local.turn
    fence(namespace, [turn.addresses.port])
    home = tmp_path_factory.mktemp("chromium-home")
    launcher = chromium_inside(namespace, chromium, turn.ca_file, home)
    args = [
        *room_args(),
        # Not loopback, so not a secure context by itself: the camera needs one.
        f"--unsafely-treat-insecure-origin-as-secure={turn_twin.base_url}",
    ]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(launcher), args=args, env={**os.environ, "HOME": str(home)}
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.mark.asyncio(loop_scope="module")
async def test_a_page_without_udp_joins_through_turn_over_tls(
    turn_twin: Twin, fenced_browser: Browser
) -> None:
    twin = turn_twin
    host = Api(twin.base_url)
    await host.sign_up(f"turn-{uuid.uuid4().hex[:6]}@example.com")
    mid = (await host.create_meeting(title="Behind a firewall"))["meeting_id"]
    signaling = await SignalingClient.enter(twin.ws_url, await host.join(mid, "Ada"))
    await signaling.ok("join")
    await signaling.ok("camera", {"on": True})  # so Bob's page shows her video
    ada = MediaClient(signaling)
    person = await new_person(fenced_browser, "Bob")
    await person.context.add_init_script(RECORD_PEERS)
    try:
        await asyncio.wait_for(ada.start(), 30)
        # The nodes use the same TURN servers (TURN_MEDIA_NODE_URLS, which the twin sets with
        # --turn): the node's answer and its offer each carry a relay candidate from coturn.
        publish_answer = ada.publisher.remoteDescription
        subscribe_offer = ada.subscriber.remoteDescription
        assert publish_answer is not None and " typ relay" in publish_answer.sdp
        assert subscribe_offer is not None and " typ relay" in subscribe_offer.sdp
        started = time.monotonic()
        await join(person, f"{twin.base_url}/join.html?m={mid}")
        # Bob sees Ada's video, and Ada receives Bob's camera: both ways, through the relay.
        await sees_remote_video(person.page, 1)
        for _ in range(300):
            if ada.flowing("video", 15) >= 1:
                break
            await asyncio.sleep(0.1)
        assert ada.flowing("video", 15) >= 1, ada.frames
        print(f"\njoin to video both ways through TURN/TLS: {time.monotonic() - started:.1f} s")
        selected = await person.page.evaluate(SELECTED_CANDIDATES)
        assert selected and all(c == {"type": "relay", "relay": "tls"} for c in selected), selected
        assert not person.errors, person.errors
    finally:
        await person.context.close()
        await ada.close()
        await host.close()


class _Sink(asyncio.DatagramProtocol):
    pass


async def _allocate(server: tuple[str, int], username: str, password: str) -> str:
    """Ask coturn for a relay over UDP; "allocated", or the STUN error it answered."""
    try:
        transport, _ = await asyncio.wait_for(
            aioice.turn.create_turn_endpoint(_Sink, server, username, password), 10
        )
    except aioice.stun.TransactionFailed as exc:
        code, reason = exc.response.attributes["ERROR-CODE"]
        return f"{code} {reason}"
    transport.close()
    return "allocated"


@pytest.mark.asyncio(loop_scope="module")
async def test_coturn_takes_minted_credentials_and_refuses_expired_or_forged_ones(
    turn_twin: Twin,
) -> None:
    assert turn_twin.local.turn is not None
    turn = turn_twin.local.turn
    server = (turn.addresses.host, turn.addresses.port)
    secret = turn.secret_file.read_bytes().strip()
    real = TurnServers(urls=turn.addresses.urls, secret=secret)
    username, password, _ = real.credentials("p_ann")
    assert await _allocate(server, username, password) == "allocated"

    expired = TurnServers(urls=(), secret=secret, clock=lambda: time.time() - 7 * 3600)
    old_user, old_password, _ = expired.credentials("p_ann")
    forged_user, forged_password, _ = TurnServers(urls=(), secret=b"guess").credentials("p_ann")
    refusals: list[Any] = [
        await _allocate(server, old_user, old_password),
        await _allocate(server, forged_user, forged_password),
        await _allocate(server, username, password[:-4] + "AAA="),  # tampered
        await _allocate(server, f"{int(time.time()) + 3600}:p_ann", password),  # another expiry
    ]
    assert all(r.startswith("401") for r in refusals), refusals
