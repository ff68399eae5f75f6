"""API keys: issued to an organisation by an owner or admin, checked on every partner request.

A key reads `thk_<key id>_<secret>`: the prefix makes a leaked key easy to spot (secret
scanners, our log redaction), the id finds its one item (never a scan), and the secret is
32 random bytes. The store keeps SHA-256 of the secret, not a keyed hash: with 256 bits of
entropy nobody can search for a preimage, so a server-side HMAC key would add a secret to
manage (and one whose loss or rotation breaks every key) without making a stolen table any
less useless. Hashes are compared in constant time.

Each verified request is counted against the key's rate in a one-second window (one
conditional write, `OrganisationStore.count_request`): a full window is a 429 with
`Retry-After`. Lambda containers share nothing, so the count lives in DynamoDB; the WAF rule
at the edge (infra/stacks/edge.py) caps floods before they reach this code at all. The key's
last use is written at most once a minute.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from townhall import clock
from townhall.auth.accounts import clean_name
from townhall.auth.principals import Principal
from townhall.errors import DomainError, InvalidInput, NotFound, Unauthenticated
from townhall.model.organisation import API_KEY_PREFIX, SCOPES, ApiKey
from townhall.store.cursors import Page
from townhall.store.organisations import OrganisationRecords

PREFIX = API_KEY_PREFIX
_TOKEN = re.compile(r"thk_([0-9a-z]{16})_([A-Za-z0-9_-]{43})")
KEY_ID = re.compile(r"[0-9a-z]{16}")
_ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
# How often a key's last use is written, at most.
LAST_USED_EVERY_SECONDS = 60
DEFAULT_RATE_PER_SECOND = 10
MAX_RATE_PER_SECOND = 100
# No secret hashes to this (it is not hex).
_NO_KEY_HASH = "-" * 64
# The same answer for every key that does not work: which part failed is nobody's business.
_REFUSED = "API key is not valid or was revoked"


class RateLimited(DomainError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    # The whole key, shown once: only its hash is kept.
    token: str


def looks_like_key(value: str) -> bool:
    return value.startswith(PREFIX)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def clean_scopes(scopes: list[str]) -> tuple[str, ...]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise InvalidInput(f"unknown scopes {unknown}; known: {sorted(SCOPES)}")
    if not scopes:
        raise InvalidInput("a key needs at least one scope")
    return tuple(sorted(set(scopes)))


class ApiKeyService:
    def __init__(self, store: OrganisationRecords) -> None:
        self._store = store

    def create(
        self, manager: Principal, name: str, scopes: list[str], rate_per_second: int
    ) -> IssuedKey:
        manager.require_person_manager()
        name = clean_name(name, "name", 80)
        cleaned = clean_scopes(scopes)
        if not 1 <= rate_per_second <= MAX_RATE_PER_SECOND:
            raise InvalidInput(f"rate_per_second must be 1 to {MAX_RATE_PER_SECOND}")
        key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))
        secret = secrets.token_urlsafe(32)
        key = ApiKey(
            key_id=key_id,
            org_id=manager.org_id,
            name=name,
            scopes=cleaned,
            secret_hash=_hash(secret),
            created_at=int(clock.now()),
            created_by=manager.user_id,
            rate_per_second=rate_per_second,
        )
        self._store.create_key(key)
        return IssuedKey(key, f"{PREFIX}{key_id}_{secret}")

    def keys(self, manager: Principal, limit: int, cursor: str | None) -> Page[ApiKey]:
        manager.require_person_manager()
        return self._store.keys(manager.org_id, limit, cursor)

    def revoke(self, manager: Principal, key_id: str) -> None:
        manager.require_person_manager()
        if not KEY_ID.fullmatch(key_id) or not self._store.revoke_key(
            manager.org_id, key_id, int(clock.now())
        ):
            raise NotFound("API key not found")

    def authenticate(self, token: str) -> Principal:
        """The principal of a key sent as a bearer credential: checked (constant time),
        not revoked, within its rate; its use recorded (at most once a minute)."""
        parsed = _TOKEN.fullmatch(token)
        if parsed is None:
            raise Unauthenticated(_REFUSED)
        key_id, secret = parsed.groups()
        key = self._store.key(key_id)
        # An unknown id is compared too (against nothing that matches), so the answer takes
        # the same time whichever part is wrong.
        stored = key.secret_hash if key is not None else _NO_KEY_HASH
        matches = hmac.compare_digest(stored, _hash(secret))
        if key is None or not matches or key.revoked:
            raise Unauthenticated(_REFUSED)
        now = clock.now()
        second = int(now)
        if not self._store.count_request(key_id, second, key.rate_per_second):
            raise RateLimited(
                f"this key may make {key.rate_per_second} requests a second; "
                "retry after the time in Retry-After",
                retry_after=1,
            )
        if key.last_used_at <= second - LAST_USED_EVERY_SECONDS:
            self._store.touch_key(key_id, second, second - LAST_USED_EVERY_SECONDS + 1)
        return Principal(key.org_id, key.created_by, frozenset(key.scopes), key_id=key_id)
