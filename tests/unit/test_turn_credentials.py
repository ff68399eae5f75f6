"""TURN REST API credentials as coturn's `use-auth-secret` checks them: the username names the
expiry and the participant, and the password is the HMAC-SHA1 of the username under the
shared secret (coturn's own check runs against a real coturn in
tests/integration/test_turn.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from townhall.config import Settings
from townhall.media.turn import TTL_SECONDS, TurnServers, turn_servers


def test_credentials_name_the_expiry_and_the_participant_and_sign_them() -> None:
    servers = TurnServers(urls=("turn:127.0.0.1:3478",), secret=b"s3cret", clock=lambda: 1000.0)
    (entry,) = servers.ice_servers("p_ann")
    assert entry["urls"] == ["turn:127.0.0.1:3478"]
    assert entry["username"] == f"{1000 + TTL_SECONDS}:p_ann"
    assert entry["expires_at"] == 1000 + TTL_SECONDS
    expected = hmac.new(b"s3cret", entry["username"].encode(), hashlib.sha1).digest()
    assert base64.b64decode(entry["credential"]) == expected
    # Another participant, or another secret, gets another password.
    (other,) = servers.ice_servers("p_bob")
    assert other["credential"] != entry["credential"]
    forged = TurnServers(urls=servers.urls, secret=b"guess", clock=lambda: 1000.0)
    assert forged.ice_servers("p_ann")[0]["credential"] != entry["credential"]


def test_no_turn_urls_means_no_turn() -> None:
    settings = Settings.from_env({})
    assert settings.turn_urls == ()
    assert turn_servers(settings) is None


def test_the_nodes_side_gets_its_own_credential_only_where_nodes_relay() -> None:
    urls = ("turn:127.0.0.1:3478?transport=udp",)
    servers = TurnServers(urls=urls, secret=b"s3cret", clock=lambda: 1000.0)
    assert servers.for_media_node("p_ann") == []  # nodes relay nothing by default
    relaying = TurnServers(urls=urls, secret=b"s3cret", node_urls=urls, clock=lambda: 1000.0)
    (entry,) = relaying.for_media_node("p_ann")
    assert entry["urls"] == list(urls)
    # Apart from the participant's own (coturn's per-user quota counts them apart).
    assert entry["username"] == f"{1000 + TTL_SECONDS}:p_ann.node"
    expected = hmac.new(b"s3cret", entry["username"].encode(), hashlib.sha1).digest()
    assert base64.b64decode(entry["credential"]) == expected
    assert entry["credential"] != relaying.ice_servers("p_ann")[0]["credential"]
