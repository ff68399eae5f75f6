"""The `media` action: the meeting is placed on a registered media node, and the participant
gets a media token that a node verifies with the public keys from the JWKS route alone."""

from __future__ import annotations

import http.server
import threading
import time
import uuid
from typing import Any

import pytest

from contracts.errors import TokenRejected
from contracts.media_nodes import MediaNode
from contracts.media_tokens import MediaTokenVerifier
from infra.twin.fake_aws import fake_session
from media_fleet.registry import NodeRegistry
from tests.integration.client import Api
from tests.integration.conftest import Twin
from tests.integration.test_signaling import _enter, _meeting
from townhall.media.access import streams_per_participant
from townhall.media.nodes import NodeDirectory
from townhall.media.placement import PLACEMENT_SK, MeetingPlacement, Placement
from townhall.store.placement import PlacementTable


def _registry(
    twin: Twin,
    node_id: str,
    capacity: int = 1000,
    *,
    heartbeat_interval: float = 5.0,
    control_url: str = "http://127.0.0.1:9/control",
) -> NodeRegistry:

    client = fake_session().client(
        "dynamodb",
        endpoint_url=twin.local.dynamodb_endpoint,
    )
    registry = NodeRegistry(
        twin.local.table_names["MEDIA_NODES_TABLE"],
        client,
        heartbeat_interval=heartbeat_interval,
    )
    registry.register(
        MediaNode(
            node_id=node_id,
            address="127.0.0.1:40000",
            control_url=control_url,
            capacity=capacity,
            started_at=int(time.time()),
        )
    )
    return registry


async def test_media_grant_places_the_meeting_and_tokens_verify_from_jwks(twin: Twin) -> None:
    host_api, meeting = await _meeting(twin, kind="webinar")
    mid = meeting["meeting_id"]
    host, _ = await _enter(twin, host_api, mid, "Hana Host")

    # No node registered yet: a clear error, nothing placed.
    none = await host.request("media")
    assert none["type"] == "error" and none["error"]["code"] == "conflict", none
    assert "no media node" in none["error"]["message"]

    node_id = f"node-{uuid.uuid4().hex[:6]}"
    registry = _registry(twin, node_id)
    grant = await host.ok("media")
    assert (grant["node_id"], grant["address"], grant["may_publish"]) == (
        node_id,
        "127.0.0.1:40000",
        True,
    )
    assert "control_url" not in grant

    viewer, _ = await _enter(twin, Api(twin.base_url), mid, "Viewer")
    viewer_grant = await viewer.ok("media")
    assert viewer_grant["node_id"] == node_id and viewer_grant["may_publish"] is False

    jwks = (await host_api.get("/api/.well-known/jwks.json")).json()
    verifier = MediaTokenVerifier.from_jwks(jwks, node_id)
    claims = verifier.verify(grant["token"], mid)
    assert (claims.participant_id, claims.may_publish) == (host.participant_id, True)
    assert verifier.verify(viewer_grant["token"], mid).may_publish is False
    with pytest.raises(TokenRejected):
        verifier.verify(grant["token"], "another-meeting")
    with pytest.raises(TokenRejected):
        MediaTokenVerifier.from_jwks(jwks, "another-node").verify(grant["token"], mid)

    # A draining node takes no more meetings.
    registry.drain()
    drained = await viewer.request("media")
    assert drained["type"] == "error" and drained["error"]["code"] == "conflict"
    for client in (host, viewer):
        await client.close()


def _placement_item(twin: Twin, meeting_id: str) -> dict[str, Any] | None:
    return next((i for i in twin.meeting_items(meeting_id) if i["sk"] == PLACEMENT_SK), None)


def _load(twin: Twin, node_id: str) -> int:
    item = twin.local.dynamodb_client().get_item(
        TableName=twin.local.table_names["MEDIA_NODES_TABLE"],
        Key={"node_id": {"S": node_id}},
        ConsistentRead=True,
    )["Item"]
    return int(item["load"]["N"])


async def test_a_media_request_the_node_refused_is_safe_to_retry_with_its_id(twin: Twin) -> None:
    """The media actions' effect is on the node: a request that failed there (or found no node)
    leaves no request record, no placement of the meeting and no stream reservation on the
    node, so the very same request may be sent again."""
    host_api, meeting = await _meeting(twin)
    mid = meeting["meeting_id"]
    host, _ = await _enter(twin, host_api, mid, "Hana Host")
    requests_before = [i["sk"] for i in twin.meeting_items(mid) if i["sk"].startswith("R#")]

    for _ in range(2):  # no node anywhere yet: conflict both times, never duplicate_request
        reply = await host.request("media", request_id="media-1")
        assert reply["type"] == "error" and reply["error"]["code"] == "conflict", reply

    # A node that is registered and refuses every request (its control API answers 500; a
    # closed port would make it a lost node, taken out of placement). Its heartbeat interval
    # is long, so that it stays live through the test with no heartbeat (which would replace
    # its load).
    node_id = f"node-{uuid.uuid4().hex[:6]}"
    failing = _failing_control_api()
    registry = _registry(
        twin, node_id, heartbeat_interval=60, control_url=f"http://127.0.0.1:{failing.port}/"
    )
    offer = {"sdp": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}
    refused: list[tuple[str, dict[str, Any]]] = [
        ("media_publish", offer),
        ("media_subscribe", {}),
        ("media_answer", offer),
    ]

    async def refused_twice_changing_nothing(round_: str) -> None:
        placement, load = _placement_item(twin, mid), _load(twin, node_id)
        for action, data in refused:
            for _ in range(2):
                reply = await host.request(action, data, request_id=f"{action}-{round_}")
                assert reply["type"] == "error", reply
                assert reply["error"]["code"] == "media_unavailable", reply
                assert _placement_item(twin, mid) == placement, (action, round_)
                assert _load(twin, node_id) == load, (action, round_)

    # Before the meeting is placed: nothing placed, nothing reserved.
    await refused_twice_changing_nothing("unplaced")
    assert _placement_item(twin, mid) is None and _load(twin, node_id) == 0
    assert [i["sk"] for i in twin.meeting_items(mid) if i["sk"].startswith("R#")] == requests_before

    # Once it succeeds, the id is spent: a replay is refused.
    assert (await host.request("media", request_id="media-1"))["type"] == "reply"
    again = await host.request("media", request_id="media-1")
    assert again["type"] == "error" and again["error"]["code"] == "duplicate_request"
    placed = _placement_item(twin, mid)
    assert placed is not None and placed["node_id"] == node_id and "pending" not in placed
    assert _load(twin, node_id) == streams_per_participant(meeting["video_slots"])

    # Placed now: a refused request leaves the placement and the reservations as they were.
    await refused_twice_changing_nothing("placed")
    registry.deregister()
    failing.shutdown()
    await host.close()


class _FailingControlApi(http.server.ThreadingHTTPServer):
    @property
    def port(self) -> int:
        return int(self.server_address[1])


def _failing_control_api() -> _FailingControlApi:
    """A node's control API that accepts connections and fails every request (HTTP 500)."""

    class Failing(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            body = b'{"error": {"code": "internal", "message": "broken"}}'
            self.send_response(500)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = _FailingControlApi(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _placement_service(twin: Twin) -> MeetingPlacement:
    client = twin.local.dynamodb_client()
    nodes = NodeDirectory(twin.local.table_names["MEDIA_NODES_TABLE"], client)
    return MeetingPlacement(twin.local.table_names["MEETINGS_TABLE"], nodes, client)


def test_a_refused_request_takes_back_only_what_nobody_else_relied_on(twin: Twin) -> None:
    """The placement a request wrote is pending until its node answers. Withdrawn after a
    refusal, it is put back as it was; but once another request of the meeting relied on it
    (and so may have been accepted by the node), the withdrawal leaves it in place."""
    node_id = f"node-{uuid.uuid4().hex[:6]}"
    registry = _registry(twin, node_id, capacity=10_000, heartbeat_interval=60)
    placement = _placement_service(twin)
    streams = streams_per_participant(9)
    load = _load(twin, node_id)

    # Refused, nobody else involved: no placement, no reservation left.
    alone = f"m{uuid.uuid4().hex[:9]}"
    first = placement.hold(alone, streams)
    assert first.node.node_id == node_id, "another test's node is still taking meetings"
    assert first.placed is not None and first.placed.pending is not None
    assert _placement_item(twin, alone) is not None
    assert _load(twin, node_id) == load + streams
    assert placement.withdraw(first) is True
    assert _placement_item(twin, alone) is None and _load(twin, node_id) == load

    # Refused after other requests relied on the placement: it stays, settled by them.
    shared = f"m{uuid.uuid4().hex[:9]}"
    first = placement.hold(shared, streams)
    follower = placement.hold(shared, streams, reserve=False)  # a publish or an answer
    subscriber = placement.hold(shared, streams)  # a subscribe: reserves on the same node
    assert follower.node.node_id == subscriber.node.node_id == node_id
    assert follower.placed is None and subscriber.placed is None
    assert placement.withdraw(first) is False
    kept = _placement_item(twin, shared)
    assert kept is not None and kept["node_id"] == node_id and "pending" not in kept
    assert _load(twin, node_id) == load + streams  # the subscriber's, not the refused one's

    # Withdrawn first: a request that comes after places the meeting anew, as its own; once
    # settled (its node accepted), nothing takes it back.
    later = f"m{uuid.uuid4().hex[:9]}"
    first = placement.hold(later, streams)
    assert placement.withdraw(first) is True
    second = placement.hold(later, streams, reserve=False)
    assert second.placed is not None and first.placed is not None
    assert second.placed.pending != first.placed.pending
    assert placement.settle(second) is True
    settled = _placement_item(twin, later)
    assert settled is not None and "pending" not in settled
    assert placement.withdraw(second) is False
    assert _placement_item(twin, later) == settled

    # A request that moved the meeting off a draining node puts that placement back.
    moved = f"m{uuid.uuid4().hex[:9]}"
    old_id = f"node-{uuid.uuid4().hex[:6]}"
    old = _registry(twin, old_id, capacity=10_000, heartbeat_interval=60)
    old_placement = Placement(moved, old_id, 1_700_000_000)
    table = PlacementTable(twin.local.table_names["MEETINGS_TABLE"], twin.local.dynamodb_client())
    assert table.put(old_placement, replacing=None)
    before = _placement_item(twin, moved)
    old.drain()
    move = placement.hold(moved, streams, reserve=False)
    assert move.node.node_id == node_id and move.replaced == old_placement
    assert placement.withdraw(move) is True
    assert _placement_item(twin, moved) == before
    for registered in (old, registry):
        registered.deregister()
