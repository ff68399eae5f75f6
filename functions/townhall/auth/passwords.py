"""Password hashing with argon2id (RFC 9106), through argon2-cffi's defaults."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from townhall.errors import InvalidInput

MIN_LENGTH = 10
MAX_LENGTH = 256  # argon2 takes any length; the cap bounds the work an attacker can ask for

_hasher = PasswordHasher()  # argon2id, RFC 9106 "low memory" parameters


def check_policy(password: str) -> None:
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise InvalidInput(f"password must be {MIN_LENGTH} to {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    check_policy(password)
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


_dummy_hash: str | None = None


def verify_dummy(password: str) -> None:
    """Spend the time of a real verification, so that sign-in takes as long for an unknown
    email as for a wrong password. The dummy hash is made on first use, not at import."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("not-a-real-password-0")
    verify_password(_dummy_hash, password)
