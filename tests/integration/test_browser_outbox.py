"""No page shows an event twice: the outbox delivers at least once, so a retried batch posts
its events again, and the page drops an event whose id it already has (web/room/session.js).
Reactions are the test's event because showing one is not idempotent: each copy that got
through would float a bubble of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from playwright.async_api import Browser, expect

from infra.twin.server import TwinOptions
from tests.integration import outbox_handlers
from tests.integration.client import Api, SignalingClient
from tests.integration.conftest import Twin, _start
from tests.integration.room_pages import join, new_person
from townhall.functions import OUTBOX_FANOUT

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def retrying_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    overrides = {
        OUTBOX_FANOUT.logical_id: "tests.integration.outbox_handlers.fails_marked_batches_once"
    }
    yield from _start(tmp_path_factory, TwinOptions(handler_overrides=overrides))


async def test_a_reaction_delivered_twice_floats_once(
    retrying_twin: Twin, room_browser: Browser
) -> None:
    twin = retrying_twin
    host_api = Api(twin.base_url)
    account = await host_api.sign_up(f"dup-{uuid.uuid4().hex[:6]}@example.com", name="Ada")
    info = await host_api.create_meeting(title="Twice")
    ada = await new_person(room_browser, "Ada", refresh_token=account["refresh_token"])
    try:
        await join(ada, info["join_url"])
        # A guest on a plain socket, whose name carries the mark that makes the consumer fail
        # the batch of their reaction once, after posting it: Lambda's retry posts it again.
        guest = Api(twin.base_url)
        name = f"Cy {outbox_handlers.RETRY_MARK}"
        cy = await SignalingClient.enter(twin.ws_url, await guest.join(info["meeting_id"], name))
        assert (await cy.request("join"))["type"] == "reply"
        await expect(ada.page.locator("#stage .tile")).to_have_count(2)
        await cy.ok("react", {"emoji": "🎉"})

        # Both copies reached the socket (so the retry did happen) with one id...
        await cy.wait_for(lambda: len(cy.events_named("reaction")) == 2)
        first, second = cy.events_named("reaction")
        assert first["event_id"] == second["event_id"]
        frames = await ada.page.evaluate(
            "() => window.testEvents.filter((e) => e[1] === 'reaction').length"
        )
        assert frames == 2
        # ...and the page floats one bubble, and announces it once.
        bubbles = ada.page.locator("#reactions-layer .reaction", has_text="Cy")
        await expect(bubbles).to_have_count(1)
        await ada.page.wait_for_timeout(500)  # a late copy would show by now
        await expect(bubbles).to_have_count(1)
        await ada.page.screenshot(path=f"/tmp/outbox-reaction-{uuid.uuid4().hex[:4]}.png")
        assert ada.errors == []
        await cy.close()
    finally:
        await ada.context.close()
