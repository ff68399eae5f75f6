"""Host accounts and their refresh tokens in the Accounts table.

Items (partition key `pk` only):
- `EMAIL#{email}`: the sign-in record (user id, argon2id hash, name). Email is unique because
  the item is written with `attribute_not_exists(pk)`.
- `USER#{user_id}`: the profile, written in the same transaction.
- `REFRESH#{token_id}`: a refresh token's SHA-256 and owner, with a TTL. Its first use (a
  conditional update) ends its life a few seconds later: within them it works again a bounded
  number of times, for a page that left while its refresh was in flight (the new token in the
  lost response never reached it); after them it is refused. Sign-out deletes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from townhall import clock
from townhall.store import dynamo


@dataclass(frozen=True)
class Account:
    user_id: str
    email: str
    name: str
    password_hash: str
    created_at: int


class EmailTaken(Exception):
    pass


@dynamo.store_boundary
class AccountStore:
    def __init__(self, table: str) -> None:
        self._table = table

    def create(self, account: Account) -> None:
        email_item = {
            "pk": f"EMAIL#{account.email}",
            "user_id": account.user_id,
            "email": account.email,
            "name": account.name,
            "password_hash": account.password_hash,
            "created_at": account.created_at,
        }
        user_item = {
            "pk": f"USER#{account.user_id}",
            "user_id": account.user_id,
            "email": account.email,
            "name": account.name,
            "created_at": account.created_at,
        }
        try:
            dynamo.client().transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": dynamo.to_ddb(email_item),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": dynamo.to_ddb(user_item),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except ClientError as exc:
            if "ConditionalCheckFailed" in dynamo.cancellation_reasons(exc):
                raise EmailTaken(account.email) from exc
            raise

    def by_email(self, email: str) -> Account | None:
        raw = (
            dynamo.client()
            .get_item(
                TableName=self._table,
                Key=dynamo.to_ddb({"pk": f"EMAIL#{email}"}),
                ConsistentRead=True,
            )
            .get("Item")
        )
        if not raw:
            return None
        item = dynamo.from_ddb(raw)
        return Account(
            user_id=item["user_id"],
            email=item["email"],
            name=item["name"],
            password_hash=item["password_hash"],
            created_at=int(item["created_at"]),
        )

    def by_id(self, user_id: str) -> Account | None:
        """The profile (without the password hash, which lives only on the email item)."""
        raw = (
            dynamo.client()
            .get_item(TableName=self._table, Key=dynamo.to_ddb({"pk": f"USER#{user_id}"}))
            .get("Item")
        )
        if not raw:
            return None
        item = dynamo.from_ddb(raw)
        return Account(user_id, item["email"], item["name"], "", int(item["created_at"]))

    def update_password_hash(self, email: str, password_hash: str) -> None:
        dynamo.client().update_item(
            TableName=self._table,
            Key=dynamo.to_ddb({"pk": f"EMAIL#{email}"}),
            UpdateExpression="SET password_hash = :h",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":h": dynamo.value(password_hash)},
        )

    def put_refresh(self, token_id: str, secret_hash: str, user_id: str, expires_at: int) -> None:
        dynamo.client().put_item(
            TableName=self._table,
            Item=dynamo.to_ddb(
                {
                    "pk": f"REFRESH#{token_id}",
                    "user_id": user_id,
                    "secret_hash": secret_hash,
                    "ttl": expires_at,
                }
            ),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def consume_refresh(
        self, token_id: str, secret_hash: str, reuse_seconds: int = 0, most_reuses: int = 0
    ) -> str | None:
        """Use the token if the secret matches and it has not expired; return its owner.

        The first use ends its life `reuse_seconds` later (so it still works, `most_reuses`
        more times, for a response that was lost in between); a token whose secret does not
        match, that expired, or that is past its reuses answers None."""
        now = int(clock.now())
        first = self._use_refresh(
            token_id,
            "SET used_at = :now, #ttl = :end, reuses = :zero",
            "attribute_not_exists(used_at)",
            {":h": secret_hash, ":now": now, ":end": now + reuse_seconds, ":zero": 0},
        )
        return first or self._use_refresh(
            token_id,
            "ADD reuses :one",
            "reuses < :most",
            {":h": secret_hash, ":now": now, ":one": 1, ":most": most_reuses},
        )

    def _use_refresh(
        self, token_id: str, update: str, condition: str, values: dict[str, Any]
    ) -> str | None:
        """One conditional use of a refresh token (its secret matching, its `ttl` not passed,
        and `condition`); its owner, or None when the condition failed."""
        try:
            result = dynamo.client().update_item(
                TableName=self._table,
                Key=dynamo.to_ddb({"pk": f"REFRESH#{token_id}"}),
                UpdateExpression=update,
                ConditionExpression=f"secret_hash = :h AND #ttl > :now AND {condition}",
                ExpressionAttributeNames={"#ttl": "ttl"},
                ExpressionAttributeValues={k: dynamo.value(v) for k, v in values.items()},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return None
            raise
        item = result.get("Attributes")
        return str(dynamo.from_ddb(item)["user_id"]) if item else None

    def revoke_refresh(self, token_id: str, secret_hash: str) -> None:
        """Delete the token now (sign-out: no reuse), if the secret matches."""
        try:
            dynamo.client().delete_item(
                TableName=self._table,
                Key=dynamo.to_ddb({"pk": f"REFRESH#{token_id}"}),
                ConditionExpression="secret_hash = :h",
                ExpressionAttributeValues={":h": dynamo.value(secret_hash)},
            )
        except ClientError as exc:
            if not dynamo.is_condition_failure(exc):
                raise
