"""Accounts read "now" from the control plane's clock seam (townhall.clock), as the checks
that consume them do; and an email address must match the pattern in full."""

from __future__ import annotations

import time

import pytest

from townhall import clock
from townhall.auth.accounts import REFRESH_TTL_SECONDS, AccountService, normalize_email
from townhall.auth.keys import SigningKey
from townhall.auth.tokens import TokenService
from townhall.errors import InvalidInput
from townhall.store.accounts import Account, AccountStore


class RecordingStore(AccountStore):
    """Keeps what the service writes instead of writing it."""

    def __init__(self) -> None:
        super().__init__("accounts")
        self.created: list[Account] = []
        self.refresh_expiry: list[int] = []

    def create(self, account: Account) -> None:
        self.created.append(account)

    def put_refresh(self, token_id: str, secret_hash: str, user_id: str, expires_at: int) -> None:
        self.refresh_expiry.append(expires_at)


def test_created_at_and_the_refresh_tokens_life_follow_the_moved_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ahead = 40 * 86400
    monkeypatch.setattr(clock, "_offset_seconds", float(ahead))
    store = RecordingStore()
    service = AccountService(store, TokenService(SigningKey.from_secret_string("unit")))
    service.sign_up("Cleo@Example.com", "correct horse 1", "Cleo")
    now = time.time() + ahead
    (account,) = store.created
    (expires_at,) = store.refresh_expiry
    assert abs(account.created_at - now) < 60
    assert abs(expires_at - (now + REFRESH_TTL_SECONDS)) < 60


@pytest.mark.parametrize(
    "email",
    ["ann@example.com", "  Ann.Lee+tag@Example.co.uk ", "a@b.io", "x" * 64 + "@example.org"],
)
def test_addresses_that_match_in_full_are_accepted(email: str) -> None:
    assert normalize_email(email) == email.strip().lower()


@pytest.mark.parametrize(
    "email",
    [
        "",
        "ann",
        "ann@example",
        "ann@example.c",
        "ann@@example.com",
        "ann lee@example.com",
        "ann@example.com\nbob@example.com",
        "ann@example.com bob",
        "x" * 65 + "@example.org",
        "a@" + "b" * 250 + ".com",
    ],
)
def test_anything_else_is_refused(email: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_email(email)
