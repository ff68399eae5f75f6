"""The `media` action: the meeting is placed on a registered media node, and the participant
gets a media token that a node verifies with the public keys from the JWKS route alone."""

from __future__ import annotations

import time
import uuid

import pytest

from infra.twin.fake_aws import FAKE_CREDENTIALS, REGION
from media_fleet.registry import NodeRegistry
from tests.integration.client import Api
from tests.integration.conftest import Twin
from tests.integration.test_signaling import _enter, _meeting
from townhall.errors import Unauthenticated
from townhall.media.nodes import MediaNode
from townhall.media.tokens import MediaTokenVerifier


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
    with pytest.raises(Unauthenticated):
        verifier.verify(grant["token"], "another-meeting")
    with pytest.raises(Unauthenticated):
        MediaTokenVerifier.from_jwks(jwks, "another-node").verify(grant["token"], mid)

    # A draining node takes no more meetings.
    registry.drain()
    drained = await viewer.request("media")
    assert drained["type"] == "error" and drained["error"]["code"] == "conflict"
    for client in (host, viewer):
        await client.close()
