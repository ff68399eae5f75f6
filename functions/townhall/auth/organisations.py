"""Organisations: the one every account belongs to, its members and their roles."""

from __future__ import annotations

from townhall import clock
from townhall.auth.claims import AccessClaims
from townhall.auth.principals import ROLE_SCOPES, Principal
from townhall.errors import Conflict, InvalidInput, NotFound
from townhall.model.organisation import Membership, Organisation, OrgRole
from townhall.store.accounts import AccountStore
from townhall.store.cursors import Page
from townhall.store.organisations import OrganisationRecords, found_solo


class OrganisationService:
    def __init__(self, store: OrganisationRecords, accounts: AccountStore) -> None:
        self._store = store
        self._accounts = accounts

    def membership(self, person: AccessClaims) -> Membership:
        """The person's membership. An account without one (created before organisations,
        with the migration not run yet, or whose sign-up stopped half-way) founds its own
        here: every account is in one organisation."""
        found = self._store.membership(person.user_id)
        if found is not None:
            return found
        return found_solo(self._store, person.user_id, person.email, person.name, int(clock.now()))

    def principal(self, person: AccessClaims) -> Principal:
        m = self.membership(person)
        return Principal(m.org_id, person.user_id, ROLE_SCOPES[m.role], role=m.role)

    def organisation(self, principal: Principal) -> Organisation:
        org = self._store.organisation(principal.org_id)
        if org is None:
            raise NotFound("organisation not found")
        return org

    def members(self, principal: Principal, limit: int, cursor: str | None) -> Page[Membership]:
        return self._store.members(principal.org_id, limit, cursor)

    def org_of(self, user_id: str) -> str | None:
        m = self._store.membership(user_id)
        return m.org_id if m else None

    def add_member(self, manager: Principal, email: str, role: OrgRole) -> Membership:
        """Bring an existing account into the manager's organisation. The account leaves the
        organisation it founded alone (which closes); one with other members, or live keys,
        is refused: nobody's access moves with them by surprise."""
        manager.require_person_manager()
        if role == "owner" and manager.role != "owner":
            raise InvalidInput("only an owner may add another owner")
        account = self._accounts.by_email(email)
        # The same answer for "no such account" as for any other refusal of this email would
        # tell who has an account; an invitation flow (phase 2) will not need it.
        if account is None:
            raise NotFound("no account with this email")
        current = self._store.membership(account.user_id) or found_solo(
            self._store, account.user_id, account.email, account.name, int(clock.now())
        )
        if current.org_id == manager.org_id:
            raise Conflict("this account is already a member")
        others = self._store.members(current.org_id, 2, None).items
        if any(m.user_id != account.user_id for m in others):
            raise Conflict("this account is in an organisation with other members")
        if any(not k.revoked for k in self._store.keys(current.org_id, 100, None).items):
            raise Conflict("this account's organisation has API keys: revoke them first")
        moved = Membership(
            account.user_id, manager.org_id, role, account.email, account.name, int(clock.now())
        )
        if not self._store.move_member(moved, current.org_id, close_from=True):
            raise Conflict("the account's organisation changed meanwhile; try again")
        return moved
