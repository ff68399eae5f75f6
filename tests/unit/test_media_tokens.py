"""Media and revocation tokens: issued with the private key (townhall.media.tokens), verified
on a node with the public key alone (contracts.media_tokens)."""

import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts.errors import TokenRejected
from contracts.jwks import public_key_from_jwks, public_keys_from_jwks
from contracts.media_tokens import (
    CLOCK_SKEW_SECONDS,
    MEDIA_TTL_SECONDS,
    REVOCATION_RETENTION_SECONDS,
    MediaClaims,
    MediaTokenVerifier,
)
from townhall.auth.keys import SigningKey
from townhall.auth.tokens import TokenService
from townhall.errors import Unauthenticated
from townhall.media.jwks import jwks
from townhall.media.tokens import MediaTokenService

NODE = "node-a"


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.from_private_key(Ed25519PrivateKey.generate())


@pytest.fixture
def verifier(key: SigningKey) -> MediaTokenVerifier:
    # Built from the public key only, as a node builds it.
    return MediaTokenVerifier({key.kid: key.public_key}, NODE)


def test_round_trip_carries_every_claim(key: SigningKey, verifier: MediaTokenVerifier) -> None:
    token, exp = MediaTokenService(key).issue("m1", "p_1", NODE, may_publish=True)
    claims = verifier.verify(token, "m1")
    assert (claims.meeting_id, claims.participant_id, claims.node_id) == ("m1", "p_1", NODE)
    assert claims.may_publish is True
    assert claims.expires_at == exp
    assert exp - time.time() == pytest.approx(MEDIA_TTL_SECONDS, abs=2)
    assert claims.token_id
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "kid": key.kid, "typ": "JWT"}
    body = jwt.decode(token, options={"verify_signature": False})
    assert body["aud"] == "townhall:media" and body["pub"] is True


def test_listen_only_token_says_so(key: SigningKey, verifier: MediaTokenVerifier) -> None:
    token, _ = MediaTokenService(key).issue("m1", "p_2", NODE, may_publish=False)
    assert verifier.verify(token, "m1").may_publish is False


def test_forged_with_another_key_under_the_same_kid_is_refused(
    key: SigningKey, verifier: MediaTokenVerifier
) -> None:
    genuine, _ = MediaTokenService(key).issue("m1", "p_1", NODE, may_publish=True)
    claims = jwt.decode(genuine, options={"verify_signature": False})
    forged = jwt.encode(
        claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": key.kid}
    )
    with pytest.raises(TokenRejected, match="signature is invalid"):
        verifier.verify(forged, "m1")


def test_token_under_an_unknown_kid_is_refused(verifier: MediaTokenVerifier) -> None:
    other = SigningKey.from_private_key(Ed25519PrivateKey.generate())
    token, _ = MediaTokenService(other).issue("m1", "p_1", NODE, may_publish=True)
    with pytest.raises(TokenRejected, match="unknown key"):
        verifier.verify(token, "m1")


def test_expired_token_is_refused_after_the_skew(key: SigningKey) -> None:
    issued_at = 1_800_000_000.0
    token, exp = MediaTokenService(key, clock=lambda: issued_at).issue(
        "m1", "p_1", NODE, may_publish=True
    )
    within_skew = MediaTokenVerifier(
        {key.kid: key.public_key}, NODE, clock=lambda: exp + CLOCK_SKEW_SECONDS - 1
    )
    assert within_skew.verify(token, "m1").participant_id == "p_1"
    late = MediaTokenVerifier(
        {key.kid: key.public_key}, NODE, clock=lambda: exp + CLOCK_SKEW_SECONDS + 1
    )
    with pytest.raises(TokenRejected, match="expired"):
        late.verify(token, "m1")


def test_token_from_the_future_is_refused(key: SigningKey) -> None:
    token, _ = MediaTokenService(key, clock=lambda: time.time() + 600).issue(
        "m1", "p_1", NODE, may_publish=True
    )
    with pytest.raises(TokenRejected, match="not valid yet"):
        MediaTokenVerifier({key.kid: key.public_key}, NODE).verify(token, "m1")


def test_token_for_another_meeting_is_refused(
    key: SigningKey, verifier: MediaTokenVerifier
) -> None:
    token, _ = MediaTokenService(key).issue("m1", "p_1", NODE, may_publish=True)
    with pytest.raises(TokenRejected, match="another meeting"):
        verifier.verify(token, "m2")


def test_token_for_another_node_is_refused(key: SigningKey) -> None:
    token, _ = MediaTokenService(key).issue("m1", "p_1", "node-b", may_publish=True)
    with pytest.raises(TokenRejected, match="another media node"):
        MediaTokenVerifier({key.kid: key.public_key}, NODE).verify(token, "m1")


def test_join_and_access_tokens_are_not_media_tokens(
    key: SigningKey, verifier: MediaTokenVerifier
) -> None:
    tokens = TokenService(key)
    join, _ = tokens.issue_join("m1", "p_1", "host", "Ada", None, session_id="s_1")
    access, _ = tokens.issue_access("u_1", "a@example.com", "Ada")
    for token in (join, access):
        with pytest.raises(TokenRejected, match="not a media token"):
            verifier.verify(token, "m1")
    # And the other way round: a media token opens neither the meeting nor the API.
    media, _ = MediaTokenService(key).issue("m1", "p_1", NODE, may_publish=True)
    with pytest.raises(Unauthenticated):
        tokens.verify_join(media, "m1")
    with pytest.raises(Unauthenticated):
        tokens.verify_access(media)


def test_alg_none_and_hmac_confusion_are_refused(
    key: SigningKey, verifier: MediaTokenVerifier
) -> None:
    genuine, _ = MediaTokenService(key).issue("m1", "p_1", NODE, may_publish=True)
    claims = jwt.decode(genuine, options={"verify_signature": False})
    unsigned = jwt.encode(claims, "", algorithm="none", headers={"kid": key.kid})
    with pytest.raises(TokenRejected, match="algorithm"):
        verifier.verify(unsigned, "m1")
    # HS256 keyed with the public key's bytes: the classic confusion attack.
    public_raw = key.public_key.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    hmac = jwt.encode(claims, public_raw, algorithm="HS256", headers={"kid": key.kid})
    with pytest.raises(TokenRejected, match="algorithm"):
        verifier.verify(hmac, "m1")
    with pytest.raises(TokenRejected, match="malformed"):
        verifier.verify("not-a-token", "m1")


def test_token_without_the_publish_claim_is_refused(
    key: SigningKey, verifier: MediaTokenVerifier
) -> None:
    now = int(time.time())
    claims = {
        "iss": "townhall",
        "aud": "townhall:media",
        "sub": "p_1",
        "mid": "m1",
        "nid": NODE,
        "pub": "yes",  # not a boolean
        "iat": now,
        "exp": now + 60,
    }
    token = jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid})
    with pytest.raises(TokenRejected, match="'pub'"):
        verifier.verify(token, "m1")


def test_verifier_refuses_to_hold_a_private_key(key: SigningKey) -> None:
    with pytest.raises(TypeError, match="public keys only"):
        MediaTokenVerifier({key.kid: key.private_key}, NODE)  # type: ignore[dict-item]


def test_jwks_carries_the_public_key_only_and_loads_back(key: SigningKey) -> None:
    document = json.loads(json.dumps(jwks(key)))  # as served over HTTP
    [jwk] = document["keys"]
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and jwk["kid"] == key.kid
    assert "d" not in jwk
    loaded = public_key_from_jwks(document, key.kid)
    token, _ = MediaTokenService(key).issue("m1", "p_1", NODE, may_publish=True)
    assert MediaTokenVerifier({key.kid: loaded}, NODE).verify(token, "m1").node_id == NODE
    assert MediaTokenVerifier.from_jwks(document, NODE).verify(token, "m1").meeting_id == "m1"


def test_jwks_with_a_rotated_key_verifies_both(key: SigningKey) -> None:
    new = SigningKey.from_private_key(Ed25519PrivateKey.generate())
    document = {"keys": jwks(key)["keys"] + jwks(new)["keys"]}
    verifier = MediaTokenVerifier.from_jwks(document, NODE)
    for signer in (key, new):
        token, _ = MediaTokenService(signer).issue("m1", "p_1", NODE, may_publish=False)
        assert verifier.verify(token, "m1").participant_id == "p_1"


def test_malformed_jwks_are_refused(key: SigningKey) -> None:
    [jwk] = jwks(key)["keys"]
    with pytest.raises(ValueError, match="no keys"):
        public_keys_from_jwks({"keys": []})
    with pytest.raises(ValueError, match="private key"):
        public_keys_from_jwks({"keys": [{**jwk, "d": jwk["x"]}]})
    with pytest.raises(ValueError, match="Ed25519"):
        public_keys_from_jwks({"keys": [{**jwk, "kty": "RSA"}]})
    with pytest.raises(ValueError, match="32-byte"):
        public_keys_from_jwks({"keys": [{**jwk, "x": jwk["x"][:20]}]})
    with pytest.raises(ValueError, match="no key"):
        public_key_from_jwks({"keys": [jwk]}, "other-kid")


def test_the_meetings_video_slots_travel_in_the_token() -> None:
    key = SigningKey.from_private_key(Ed25519PrivateKey.generate())
    verifier = MediaTokenVerifier({key.kid: key.public_key}, "node-a")
    token, _ = MediaTokenService(key).issue("m1", "p1", "node-a", may_publish=True, video_slots=4)
    assert verifier.verify(token, "m1").video_slots == 4
    token, _ = MediaTokenService(key).issue("m1", "p1", "node-a", may_publish=True)
    assert verifier.verify(token, "m1").video_slots is None
    token, _ = MediaTokenService(key).issue("m1", "p1", "node-a", may_publish=True, video_slots=99)
    with pytest.raises(TokenRejected, match="'vs'"):
        verifier.verify(token, "m1")


def _signed(key: SigningKey, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid})


def test_the_issue_time_travels_in_milliseconds(key: SigningKey) -> None:
    issued_at = 1_800_000_000.4567
    token, exp = MediaTokenService(key, clock=lambda: issued_at).issue(
        "m1", "p_1", NODE, may_publish=True
    )
    verifier = MediaTokenVerifier({key.kid: key.public_key}, NODE, clock=lambda: issued_at)
    claims = verifier.verify(token, "m1")
    assert claims.issued_at_ms == 1_800_000_000_456
    assert exp == 1_800_000_000 + MEDIA_TTL_SECONDS  # whole seconds, as before
    body = jwt.decode(token, options={"verify_signature": False})
    assert (body["iat"], body["iat_ms"]) == (1_800_000_000, 1_800_000_000_456)


def test_a_token_issued_before_the_millisecond_claim_counts_from_its_second(
    key: SigningKey, verifier: MediaTokenVerifier
) -> None:
    now = int(time.time())
    claims = {
        "iss": "townhall",
        "aud": "townhall:media",
        "sub": "p_1",
        "mid": "m1",
        "nid": NODE,
        "pub": True,
        "iat": now,
        "exp": now + 60,
    }
    assert verifier.verify(_signed(key, claims), "m1").issued_at_ms == now * 1000
    for wrong in (now * 1000 + 1000, now * 1000 - 1, "soon", True):
        with pytest.raises(TokenRejected, match="'iat_ms' does not match 'iat'"):
            verifier.verify(_signed(key, {**claims, "iat_ms": wrong}), "m1")


def test_a_media_token_may_live_at_most_its_lifetime(
    key: SigningKey, verifier: MediaTokenVerifier
) -> None:
    # Revocations are forgotten once the tokens they cover have expired: that needs a bound.
    now = int(time.time())
    claims = {
        "iss": "townhall",
        "aud": "townhall:media",
        "sub": "p_1",
        "mid": "m1",
        "nid": NODE,
        "pub": True,
        "iat": now,
        "exp": now + MEDIA_TTL_SECONDS + 1,
    }
    with pytest.raises(TokenRejected, match="lives longer than 120 s"):
        verifier.verify(_signed(key, claims), "m1")
    with pytest.raises(ValueError, match="1 to 120 s"):
        MediaTokenService(key, ttl_seconds=MEDIA_TTL_SECONDS + 1)
    short, exp = MediaTokenService(key, ttl_seconds=30).issue("m1", "p_1", NODE, may_publish=True)
    assert verifier.verify(short, "m1").expires_at == exp


def test_revocation_tokens_name_a_participant_or_the_whole_meeting(
    key: SigningKey, verifier: MediaTokenVerifier
) -> None:
    tokens = MediaTokenService(key, clock=lambda: 1_800_000_000.25)
    verifier = MediaTokenVerifier({key.kid: key.public_key}, NODE, clock=lambda: 1_800_000_000)
    one = verifier.verify_revocation(
        tokens.issue_revocation("m1", NODE, participant_id="p_1"), "m1"
    )
    assert (one.scope, one.participant_id, one.meeting_id, one.node_id) == (
        "participant",
        "p_1",
        "m1",
        NODE,
    )
    assert one.revoked_at_ms == 1_800_000_000_250 and one.token_id
    everyone = verifier.verify_revocation(tokens.issue_revocation("m1", NODE), "m1")
    assert (everyone.scope, everyone.participant_id) == ("meeting", None)
    # Bound to its meeting and node like a media token.
    with pytest.raises(TokenRejected, match="revocation token is for another meeting"):
        verifier.verify_revocation(tokens.issue_revocation("m1", NODE), "m2")
    with pytest.raises(TokenRejected, match="revocation token is for another media node"):
        verifier.verify_revocation(tokens.issue_revocation("m1", "node-b"), "m1")


def test_a_media_token_cannot_revoke_and_a_revocation_token_cannot_open_a_session(
    key: SigningKey, verifier: MediaTokenVerifier
) -> None:
    # A participant holds a media token of their own: it must never revoke anyone.
    media, _ = MediaTokenService(key).issue("m1", "p_1", NODE, may_publish=True)
    with pytest.raises(TokenRejected, match="not a revocation token"):
        verifier.verify_revocation(media, "m1")
    revocation = MediaTokenService(key).issue_revocation("m1", NODE)
    with pytest.raises(TokenRejected, match="not a media token"):
        verifier.verify(revocation, "m1")
    # Nor does a join token revoke: only the control plane's revocation audience does.
    join, _ = TokenService(key).issue_join("m1", "p_1", "host", "Ada", None, session_id="s_1")
    with pytest.raises(TokenRejected, match="not a revocation token"):
        verifier.verify_revocation(join, "m1")


def test_a_revocation_token_says_exactly_what_it_revokes(
    key: SigningKey, verifier: MediaTokenVerifier
) -> None:
    now = int(time.time())
    base = {
        "iss": "townhall",
        "aud": "townhall:media-revocation",
        "mid": "m1",
        "nid": NODE,
        "iat": now,
        "iat_ms": now * 1000,
        "exp": now + 30,
    }
    cases = [
        ({**base, "scope": "participant"}, "lacks claim 'pid'"),
        ({**base, "scope": "meeting", "pid": "p_1"}, "names no participant"),
        ({**base, "scope": "everything"}, "'scope' must be participant or meeting"),
        ({**base, "scope": "meeting", "iat_ms": None}, "'iat_ms' does not match 'iat'"),
    ]
    for claims, message in cases:
        with pytest.raises(TokenRejected, match=message):
            verifier.verify_revocation(_signed(key, claims), "m1")


def test_a_revocation_covers_the_tokens_issued_at_or_before_it(key: SigningKey) -> None:
    verifier = MediaTokenVerifier({key.kid: key.public_key}, NODE, clock=lambda: 1_800_000_001)

    def at(ms: int, participant: str = "p_1") -> MediaClaims:
        tokens = MediaTokenService(key, clock=lambda: ms / 1000)
        return verifier.verify(tokens.issue("m1", participant, NODE, may_publish=True)[0], "m1")

    revoked_at = 1_800_000_000_500
    revoke = MediaTokenService(key, clock=lambda: revoked_at / 1000)
    one = verifier.verify_revocation(
        revoke.issue_revocation("m1", NODE, participant_id="p_1"), "m1"
    )
    assert one.covers(at(revoked_at - 400)) and one.covers(at(revoked_at))
    # A token minted a millisecond later (a new session) passes; so do others' tokens.
    assert not one.covers(at(revoked_at + 1))
    assert not one.covers(at(revoked_at - 400, "p_2"))
    everyone = verifier.verify_revocation(revoke.issue_revocation("m1", NODE), "m1")
    assert everyone.covers(at(revoked_at - 400, "p_2")) and not everyone.covers(at(revoked_at + 1))
    # Every token it covers has expired, with the skew, this long after the revocation.
    assert REVOCATION_RETENTION_SECONDS == MEDIA_TTL_SECONDS + CLOCK_SKEW_SECONDS
