"""Organisations, memberships, API keys and per-key rate windows in the Organisations table.

Items (`pk`, `sk`):
- `ORG#{org_id}`, `META`: the organisation (name, when and by whom it was founded).
- `USER#{user_id}`, `MEMBERSHIP`: the account's one organisation and its role there. One item
  per account is what makes "an account is in one organisation" hold; `org_id` and
  `org_sk = MEMBER#{user_id}` list it under its organisation in the `by_org` index.
- `KEY#{key_id}`, `KEY`: an API key: its organisation, name, scopes, the SHA-256 of its secret,
  revocation and last use; `org_sk = KEY#{created_at}#{key_id}` lists it in `by_org`. Found
  by the id the key carries, never by scanning.
- `RATE#{key_id}`, `{second}`: how many requests the key made in that second (a fixed window),
  expiring a minute later.
- Phase 2 (webhooks): `ORG#{org_id}`, `WEBHOOK#{id}` subscriptions, listed in the same partition.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

from townhall.errors import Conflict, InvalidInput
from townhall.model.organisation import ApiKey, Membership, Organisation, solo_org_id
from townhall.store import cursors, dynamo
from townhall.store.cursors import Page

META_SK = "META"
MEMBERSHIP_SK = "MEMBERSHIP"
KEY_SK = "KEY"
BY_ORG = "by_org"
# A rate window outlives its second by this much (TTL deletion is lazy and late anyway).
RATE_WINDOW_TTL_SECONDS = 60


def org_key(org_id: str) -> dict[str, str]:
    return {"pk": f"ORG#{org_id}", "sk": META_SK}


def membership_key(user_id: str) -> dict[str, str]:
    return {"pk": f"USER#{user_id}", "sk": MEMBERSHIP_SK}


def api_key_key(key_id: str) -> dict[str, str]:
    return {"pk": f"KEY#{key_id}", "sk": KEY_SK}


def org_item(org: Organisation) -> dict[str, Any]:
    return {**org_key(org.org_id), **org.__dict__}


def membership_item(m: Membership) -> dict[str, Any]:
    return {**membership_key(m.user_id), **m.__dict__, "org_sk": f"MEMBER#{m.user_id}"}


def _key_item(key: ApiKey) -> dict[str, Any]:
    item = {**api_key_key(key.key_id), **key.__dict__, "scopes": list(key.scopes)}
    item["org_sk"] = f"KEY#{key.created_at:012d}#{key.key_id}"
    if not key.revoked:
        del item["revoked_at"]  # absent until revoked: revoke_key sets it only if absent
    return item


def _membership(item: Mapping[str, Any]) -> Membership:
    return Membership(
        user_id=item["user_id"],
        org_id=item["org_id"],
        role=item["role"],
        email=item.get("email", ""),
        name=item.get("name", ""),
        joined_at=int(item.get("joined_at", 0)),
    )


def _api_key(item: Mapping[str, Any]) -> ApiKey:
    return ApiKey(
        key_id=item["key_id"],
        org_id=item["org_id"],
        name=item["name"],
        scopes=tuple(item.get("scopes", ())),
        secret_hash=item["secret_hash"],
        created_at=int(item["created_at"]),
        created_by=item["created_by"],
        rate_per_second=int(item["rate_per_second"]),
        revoked_at=int(item.get("revoked_at", 0)),
        last_used_at=int(item.get("last_used_at", 0)),
    )


class OrganisationRecords(Protocol):
    def found(self, org: Organisation, owner: Membership) -> bool: ...

    def organisation(self, org_id: str) -> Organisation | None: ...

    def membership(self, user_id: str) -> Membership | None: ...

    def members(self, org_id: str, limit: int, cursor: str | None) -> Page[Membership]: ...

    def move_member(self, moved: Membership, from_org: str, close_from: bool) -> bool: ...

    def create_key(self, key: ApiKey) -> None: ...

    def key(self, key_id: str) -> ApiKey | None: ...

    def keys(self, org_id: str, limit: int, cursor: str | None) -> Page[ApiKey]: ...

    def revoke_key(self, org_id: str, key_id: str, at: int) -> bool: ...

    def touch_key(self, key_id: str, at: int, if_before: int) -> None: ...

    def count_request(self, key_id: str, second: int, limit: int) -> bool: ...


def found_solo(
    store: OrganisationRecords, user_id: str, email: str, name: str, at: int
) -> Membership:
    """The organisation the account founds alone, as its owner; if the account is in one
    already (a repeat, a race, a migration that got there first), that membership."""
    org_id = solo_org_id(user_id)
    owner = Membership(user_id, org_id, "owner", email, name, at)
    if store.found(Organisation(org_id, f"{name}'s organisation"[:120], at, user_id), owner):
        return owner
    existing = store.membership(user_id)
    if existing is None:  # only if it was moved and removed in between: try again
        raise Conflict("the account's organisation changed meanwhile; try again")
    return existing


@dynamo.store_boundary
class OrganisationStore:
    def __init__(self, table: str) -> None:
        self._table = table

    # -- organisations and members ------------------------------------------------------------

    def found(self, org: Organisation, owner: Membership) -> bool:
        """Write the organisation and its owner's membership together; False (and nothing
        written) if the account already belongs to an organisation. The organisation item is
        put whatever is there: a founding repeated (same ids, same values) writes the same."""
        return dynamo.transact_if_conditions_hold(
            [
                dynamo.put(self._table, org_item(org)),
                dynamo.put_new(self._table, membership_item(owner)),
            ]
        )

    def organisation(self, org_id: str) -> Organisation | None:
        item = dynamo.get(self._table, org_key(org_id))
        if item is None:
            return None
        return Organisation(
            item["org_id"], item["name"], int(item["created_at"]), item["created_by"]
        )

    def membership(self, user_id: str) -> Membership | None:
        item = dynamo.get(self._table, membership_key(user_id))
        return _membership(item) if item else None

    def members(self, org_id: str, limit: int, cursor: str | None) -> Page[Membership]:
        items, next_cursor = self._by_org(org_id, "MEMBER#", limit, cursor)
        return Page([_membership(i) for i in items], next_cursor)

    def move_member(self, moved: Membership, from_org: str, close_from: bool) -> bool:
        """Move an account into `moved.org_id`, if it is still in `from_org`; with
        `close_from`, the organisation it leaves (founded alone, now empty) goes with it."""
        items = [
            dynamo.update(
                self._table,
                membership_key(moved.user_id),
                "SET org_id = :to, #role = :role, joined_at = :at",
                {
                    ":to": moved.org_id,
                    ":role": moved.role,
                    ":at": moved.joined_at,
                    ":from": from_org,
                },
                condition="org_id = :from",
                names={"#role": "role"},
            )
        ]
        if close_from:
            items.append(
                {"Delete": {"TableName": self._table, "Key": dynamo.to_ddb(org_key(from_org))}}
            )
        return dynamo.transact_if_conditions_hold(items)

    # -- keys ---------------------------------------------------------------------------------

    def create_key(self, key: ApiKey) -> None:
        dynamo.client().put_item(
            TableName=self._table,
            Item=dynamo.to_ddb(_key_item(key)),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def key(self, key_id: str) -> ApiKey | None:
        # Consistent: a revocation holds from the next request on.
        item = dynamo.get(self._table, api_key_key(key_id))
        return _api_key(item) if item else None

    def keys(self, org_id: str, limit: int, cursor: str | None) -> Page[ApiKey]:
        items, next_cursor = self._by_org(org_id, "KEY#", limit, cursor)
        return Page([_api_key(i) for i in items], next_cursor)

    def revoke_key(self, org_id: str, key_id: str, at: int) -> bool:
        """Revoke the organisation's key; False if it has no such key. Revoking a revoked key
        keeps the first revocation time."""
        return dynamo.update_if_condition_holds(
            TableName=self._table,
            Key=dynamo.to_ddb(api_key_key(key_id)),
            UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :at)",
            ConditionExpression="org_id = :org",
            ExpressionAttributeValues={":at": dynamo.value(at), ":org": dynamo.value(org_id)},
        )

    def touch_key(self, key_id: str, at: int, if_before: int) -> None:
        """Record a use of the key, unless one after `if_before` is recorded already: at most
        one write per key per interval, however many requests it makes."""
        dynamo.update_if_condition_holds(
            TableName=self._table,
            Key=dynamo.to_ddb(api_key_key(key_id)),
            UpdateExpression="SET last_used_at = :at",
            ConditionExpression=(
                "attribute_exists(pk) AND "
                "(attribute_not_exists(last_used_at) OR last_used_at < :before)"
            ),
            ExpressionAttributeValues={
                ":at": dynamo.value(at),
                ":before": dynamo.value(if_before),
            },
        )

    def count_request(self, key_id: str, second: int, limit: int) -> bool:
        """Count one request of the key in the window of `second`; False, counting nothing,
        if the window holds `limit` already. One conditional write per request."""
        return dynamo.update_if_condition_holds(
            TableName=self._table,
            Key=dynamo.to_ddb({"pk": f"RATE#{key_id}", "sk": str(second)}),
            UpdateExpression="ADD n :one SET #ttl = :ttl",
            ConditionExpression="attribute_not_exists(n) OR n < :limit",
            ExpressionAttributeNames={"#ttl": "ttl"},
            ExpressionAttributeValues={
                ":one": dynamo.value(1),
                ":limit": dynamo.value(limit),
                ":ttl": dynamo.value(second + RATE_WINDOW_TTL_SECONDS),
            },
        )

    # -- listing ------------------------------------------------------------------------------

    def _by_org(
        self, org_id: str, prefix: str, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": BY_ORG,
            "KeyConditionExpression": "org_id = :org AND begins_with(org_sk, :prefix)",
            "ExpressionAttributeValues": {
                ":org": dynamo.value(org_id),
                ":prefix": dynamo.value(prefix),
            },
            "Limit": cursors.page_size(limit),
        }
        if cursor is not None:
            request["ExclusiveStartKey"] = dynamo.to_ddb(_start_key(cursor, org_id, prefix))
        page = dynamo.client().query(**request)
        items = [dynamo.from_ddb(raw) for raw in page.get("Items", [])]
        last = page.get("LastEvaluatedKey")
        next_cursor = None
        if last:
            plain = dynamo.from_ddb(last)
            next_cursor = cursors.encode({"pk": plain["pk"], "sk": plain["org_sk"]})
        return items, next_cursor


_CURSOR_PK = re.compile(r"(USER#u_[0-9a-z_]{1,40}|KEY#[0-9a-z]{16})")
_CURSOR_SK = re.compile(r"(MEMBER#u_[0-9a-z_]{1,40}|KEY#[0-9]{12}#[0-9a-z]{16})")


def _start_key(cursor: str, org_id: str, prefix: str) -> dict[str, str]:
    """The index key a cursor of this organisation's list names. Its own list's only: the
    organisation is not in the cursor (it comes from who asks), and the item kinds must
    agree with the list, so a cursor cannot open another organisation's list or another
    list."""
    fields = cursors.decode(cursor, {"pk": _CURSOR_PK, "sk": _CURSOR_SK})
    pk, org_sk = str(fields["pk"]), str(fields["sk"])
    if not org_sk.startswith(prefix) or not pk.startswith(
        "USER#" if prefix == "MEMBER#" else "KEY#"
    ):
        raise InvalidInput("cursor is not valid: it belongs to another list")
    sk = MEMBERSHIP_SK if prefix == "MEMBER#" else KEY_SK
    return {"pk": pk, "sk": sk, "org_id": org_id, "org_sk": org_sk}
