"""Host accounts: sign up, sign in, refresh and sign out."""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass

from townhall import clock
from townhall.auth import passwords
from townhall.auth.tokens import TokenService, new_opaque_secret
from townhall.errors import Conflict, InvalidInput, Unauthenticated
from townhall.store.accounts import Account, AccountStore, EmailTaken
from townhall.store.organisations import OrganisationRecords, found_solo

REFRESH_TTL_SECONDS = 30 * 24 * 3600
# A refresh token rotates on use, but a page that navigates away while its refresh is in flight
# never stores the new one: the old one keeps working this long after its first use, at most
# this many more times (the "reuse interval" of Auth0 and Okta). A stolen token used by its
# thief still makes the owner's refresh fail once this passes, so theft stays visible.
REFRESH_REUSE_SECONDS = 30
REFRESH_MOST_REUSES = 3
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{2,63}")


@dataclass(frozen=True)
class Session:
    user_id: str
    email: str
    name: str
    access_token: str
    access_expires_at: int
    refresh_token: str


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise InvalidInput("email is not a valid address")
    return email


# Refused in names: controls (Cc: C0, DEL, C1), format characters (Cf: bidi overrides and
# isolates, zero-width spaces, soft hyphen, BOM), surrogates (Cs), private use (Co) and
# unassigned code points (Cn): they are invisible, reorder the text around them, or render
# differently on every device, so one person could pass for another.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
# Except: ASCII whitespace, folded to single spaces as before (a pasted tab or newline), and
# the two joiners Persian, Indic scripts and emoji sequences need inside words.
_FOLDED = frozenset("\t\n\v\f\r")
_JOINERS = frozenset("\u200c\u200d")
# Letters and symbols that show nothing (Hangul fillers, the blank Braille pattern): with the
# joiners, spaces and lone combining marks, they do not make a name visible.
_BLANK = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def clean_name(name: str, field: str = "name", limit: int = 80) -> str:
    for char in name:  # before folding: str.split() would turn U+001C..U+001F, U+0085 to spaces
        if unicodedata.category(char) in _REFUSED_CATEGORIES and not (
            char in _FOLDED or char in _JOINERS
        ):
            raise InvalidInput(
                f"{field} must not contain control, format or unassigned characters"
                f" (U+{ord(char):04X})"
            )
    name = " ".join(name.split())
    if not 1 <= len(name) <= limit:
        raise InvalidInput(f"{field} must be 1 to {limit} characters")
    if all(_invisible(char) for char in name):
        raise InvalidInput(f"{field} must contain a visible character")
    return name


def _invisible(char: str) -> bool:
    return (
        char == " "
        or char in _JOINERS
        or char in _BLANK
        or unicodedata.category(char) in ("Mn", "Me")
    )


class AccountService:
    def __init__(
        self,
        store: AccountStore,
        tokens: TokenService,
        organisations: OrganisationRecords | None = None,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._organisations = organisations

    def sign_up(self, email: str, password: str, name: str) -> Session:
        email = normalize_email(email)
        name = clean_name(name)
        account = Account(
            user_id="u_" + secrets.token_hex(8),
            email=email,
            name=name,
            password_hash=passwords.hash_password(password),
            created_at=int(clock.now()),
        )
        try:
            self._store.create(account)
        except EmailTaken as exc:
            raise Conflict("an account with this email already exists") from exc
        if self._organisations is not None:
            # A separate write: should it not happen, the account founds its organisation
            # on first use instead (OrganisationService.membership), with the same id.
            found_solo(self._organisations, account.user_id, email, name, account.created_at)
        return self._session(account)

    def sign_in(self, email: str, password: str) -> Session:
        try:
            email = normalize_email(email)
        except InvalidInput as exc:
            raise Unauthenticated("wrong email or password") from exc
        account = self._store.by_email(email)
        if account is None:
            passwords.verify_dummy(password)
            raise Unauthenticated("wrong email or password")
        if not passwords.verify_password(account.password_hash, password):
            raise Unauthenticated("wrong email or password")
        if passwords.needs_rehash(account.password_hash):
            self._store.update_password_hash(email, passwords.hash_password(password))
        return self._session(account)

    def refresh(self, refresh_token: str) -> Session:
        token_id, secret = _split_refresh(refresh_token)
        user_id = self._store.consume_refresh(
            token_id, _hash(secret), REFRESH_REUSE_SECONDS, REFRESH_MOST_REUSES
        )
        if user_id is None:
            raise Unauthenticated("refresh token is invalid, expired or already used")
        account = self._account_of(user_id)
        return self._session(account)

    def sign_out(self, refresh_token: str) -> None:
        token_id, secret = _split_refresh(refresh_token)
        self._store.revoke_refresh(token_id, _hash(secret))

    def _account_of(self, user_id: str) -> Account:
        account = self._store.by_id(user_id)
        if account is None:
            raise Unauthenticated("account no longer exists")
        return account

    def _session(self, account: Account) -> Session:
        access, exp = self._tokens.issue_access(account.user_id, account.email, account.name)
        token_id = secrets.token_hex(12)
        secret = new_opaque_secret()
        self._store.put_refresh(
            token_id, _hash(secret), account.user_id, int(clock.now()) + REFRESH_TTL_SECONDS
        )
        return Session(
            user_id=account.user_id,
            email=account.email,
            name=account.name,
            access_token=access,
            access_expires_at=exp,
            refresh_token=f"{token_id}.{secret}",
        )


def _split_refresh(token: str) -> tuple[str, str]:
    token_id, _, secret = token.partition(".")
    if not token_id or not secret or len(token) > 200:
        raise Unauthenticated("refresh token is malformed")
    return token_id, secret


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
