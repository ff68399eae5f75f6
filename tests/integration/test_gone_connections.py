"""A connection that vanished without a close frame, and whose $disconnect was lost, is
cleaned up the first time a post to it answers 410."""

from __future__ import annotations

import asyncio

from tests.integration.client import Api
from tests.integration.conftest import Twin
from tests.integration.test_signaling import _enter, _meeting


async def test_dropped_connection_is_cleaned_up_after_a_410(lossy_twin: Twin) -> None:
    twin = lossy_twin
    host_api, meeting = await _meeting(twin)
    mid = meeting["meeting_id"]
    host, _ = await _enter(twin, host_api, mid, "Hana Host")
    guest = Api(twin.base_url)
    bob, _ = await _enter(twin, guest, mid, "Bob")
    bob_connection = twin.connection_of(mid, bob.participant_id)
    assert bob_connection is not None and twin.connection_item(bob_connection) is not None

    # Drop Bob's TCP connection without a close frame; the twin loses the $disconnect, as AWS may.
    bob.ws.transport.abort()
    await asyncio.wait_for(bob.closed, 10)
    await asyncio.sleep(0.3)
    assert twin.connection_of(mid, bob.participant_id) == bob_connection  # nobody knows yet

    await host.ok("chat", {"text": "anyone there?"})
    dropped = await host.wait_dropped(bob.participant_id)
    assert dropped["data"]["reason"] == "connection lost"
    assert twin.connection_of(mid, bob.participant_id) is None
    assert twin.connection_item(bob_connection) is None
    await host.ok("chat", {"text": "just me"})
    await host.close()
