"""The `media` action: the meeting is placed on a registered media node, and the participant
gets a media token that a node verifies with the public keys from the JWKS route alone."""

from __future__ import annotations

import time
import uuid

import pytest

from contracts.errors import TokenRejected
from contracts.media_nodes import MediaNode
from contracts.media_tokens import MediaTokenVerifier
from infra.twin.fake_aws import FAKE_CREDENTIALS, REGION
from media_fleet.registry import NodeRegistry
from tests.integration.client import Api
from tests.integration.conftest import Twin
from tests.integration.test_signaling import _enter, _meeting


def _registry(twin: Twin, node_id: str, capacity: int = 1000) -> NodeRegistry:
    import boto3

    client = boto3.client(
        "dynamodb",
        endpoint_url=twin.local.dynamodb_endpoint,
        region_name=REGION,
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
    )
    registry = NodeRegistry(twin.local.table_names["MEDIA_NODES_TABLE"], client)
    registry.register(
        MediaNode(
            node_id=node_id,
            address="127.0.0.1:40000",
            control_url="http://127.0.0.1:9/control",
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


async def test_a_media_request_the_node_refused_is_safe_to_retry_with_its_id(twin: Twin) -> None:
    """The media actions' effect is on the node: a request that failed there (or found no node)
    leaves no request record, so the very same request may be sent again."""
    host_api, meeting = await _meeting(twin)
    mid = meeting["meeting_id"]
    host, _ = await _enter(twin, host_api, mid, "Hana Host")
    requests_before = [i["sk"] for i in twin.meeting_items(mid) if i["sk"].startswith("R#")]

    for _ in range(2):  # no node anywhere yet: conflict both times, never duplicate_request
        reply = await host.request("media", request_id="media-1")
        assert reply["type"] == "error" and reply["error"]["code"] == "conflict", reply

    # A node that is registered but never answers (its control URL is a closed port).
    registry = _registry(twin, f"node-{uuid.uuid4().hex[:6]}")
    offer = {"sdp": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}
    for action, data in (("media_publish", offer), ("media_subscribe", {})):
        for _ in range(2):
            reply = await host.request(action, data, request_id=f"{action}-1")
            assert reply["type"] == "error", reply
            assert reply["error"]["code"] == "media_unavailable", reply
    assert [i["sk"] for i in twin.meeting_items(mid) if i["sk"].startswith("R#")] == requests_before

    # Once it succeeds, the id is spent: a replay is refused.
    assert (await host.request("media", request_id="media-1"))["type"] == "reply"
    again = await host.request("media", request_id="media-1")
    assert again["type"] == "error" and again["error"]["code"] == "duplicate_request"
    registry.deregister()
    await host.close()
