import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from townhall.auth import passwords
from townhall.auth.keys import SigningKey
from townhall.auth.tokens import TokenService
from townhall.errors import InvalidInput, Unauthenticated


@pytest.fixture
def key(tmp_path: Path) -> SigningKey:
    return SigningKey.from_file(tmp_path / "keys" / "signing.pem")


def test_key_file_is_created_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    first = SigningKey.from_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert SigningKey.from_file(path).kid == first.kid


def test_secret_string_seeds_the_same_key_every_time() -> None:
    assert SigningKey.from_secret_string("abc").kid == SigningKey.from_secret_string("abc").kid
    assert SigningKey.from_secret_string("abc").kid != SigningKey.from_secret_string("abd").kid


def test_join_token_round_trip(key: SigningKey) -> None:
    tokens = TokenService(key)
    token, exp = tokens.issue_join("m1", "p_1", "attendee", "Ada", None, session_id="s_1")
    claims = tokens.verify_join(token, "m1")
    assert (claims.meeting_id, claims.session_id, claims.participant_id, claims.role) == (
        "m1",
        "s_1",
        "p_1",
        "attendee",
    )
    assert claims.name == "Ada"
    assert claims.user_id is None and exp > time.time()
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"


def test_join_token_for_another_meeting_is_refused(key: SigningKey) -> None:
    tokens = TokenService(key)
    token, _ = tokens.issue_join("m1", "p_1", "attendee", "Ada", None, session_id="s_1")
    with pytest.raises(Unauthenticated, match="another meeting"):
        tokens.verify_join(token, "m2")


def test_expired_token_is_refused(key: SigningKey) -> None:
    past = TokenService(key, clock=lambda: time.time() - 3600)
    token, _ = past.issue_join("m1", "p_1", "attendee", "Ada", None, session_id="s_1")
    with pytest.raises(Unauthenticated, match="expired"):
        TokenService(key).verify_join(token)


def test_forged_tokens_are_refused(key: SigningKey, tmp_path: Path) -> None:
    tokens = TokenService(key)
    other = TokenService(SigningKey.from_private_key(Ed25519PrivateKey.generate()))
    forged, _ = other.issue_join("m1", "p_1", "host", "Mallory", None, session_id="s_1")
    with pytest.raises(Unauthenticated):
        tokens.verify_join(forged)
    # Same kid, other key: the signature check must catch it.
    claims = jwt.decode(forged, options={"verify_signature": False})
    resigned = jwt.encode(
        claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": key.kid}
    )
    with pytest.raises(Unauthenticated, match="signature"):
        tokens.verify_join(resigned)
    # alg=none and HMAC confusion are refused before any verification.
    unsigned = jwt.encode(claims, "", algorithm="none", headers={"kid": key.kid})  # "" is None here
    with pytest.raises(Unauthenticated, match="algorithm"):
        tokens.verify_join(unsigned)
    with pytest.raises(Unauthenticated, match="malformed"):
        tokens.verify_join("not-a-token")


def test_access_and_join_tokens_are_not_interchangeable(key: SigningKey) -> None:
    tokens = TokenService(key)
    access, _ = tokens.issue_access("u_1", "a@example.com", "Ada")
    join, _ = tokens.issue_join("m1", "p_1", "host", "Ada", "u_1", session_id="s_1")
    with pytest.raises(Unauthenticated):
        tokens.verify_join(access)
    with pytest.raises(Unauthenticated):
        tokens.verify_access(join)
    assert tokens.verify_access(access).user_id == "u_1"


def test_passwords_hash_with_argon2id() -> None:
    digest = passwords.hash_password("correct horse battery")
    assert digest.startswith("$argon2id$")
    assert passwords.verify_password(digest, "correct horse battery")
    assert not passwords.verify_password(digest, "wrong horse battery")
    with pytest.raises(InvalidInput):
        passwords.hash_password("short")


def test_resume_tokens_chain_the_same_way_every_time_and_only_with_the_key(key: SigningKey) -> None:
    tokens = TokenService(key)
    first = tokens.new_resume_token()
    second = tokens.next_resume_token(first)
    assert second == tokens.next_resume_token(first)  # a retried rejoin gets the same answer
    assert second != first and tokens.next_resume_token(second) not in (first, second)
    other = TokenService(SigningKey.from_secret_string("another key"))
    assert other.next_resume_token(first) != second
