"""Migration of the Organisations table: every account from before organisations becomes the
owner of an organisation of its own, as one that signs up now does.

The Organisations table records what it holds in `pk = SCHEMA, sk = VERSION` (absent: 0). The
twin runs `migrate` on start, after `townhall.store.migrations`; in AWS, run it once after the
deploy that adds the table (`python -m townhall.store.organisation_migration --accounts-table
<name> --organisations-table <name>`, with AWS credentials).

A run may stop anywhere and be run again. Per account there is one write, a transaction
(`OrganisationStore.found`: the organisation and the owner's membership, the membership only if
the account has none), and every value in it comes from the account item: the organisation's
id derives from the user id (`solo_org_id`) and its time is the account's creation. So a rerun
writes the same items again or nothing, and an account that got an organisation meanwhile
(signed in, added to another) keeps it. The `SCHEMA` item is written after every account.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from townhall.store import dynamo
from townhall.store.organisations import OrganisationStore, found_solo

SCHEMA_KEY = {"pk": "SCHEMA", "sk": "VERSION"}
CURRENT_VERSION = 1
# Bound on the pages a scan may take (a page is up to 1 MB).
_MAX_PASSES = 10_000


def version(organisations_table: str) -> int:
    item = dynamo.get(organisations_table, SCHEMA_KEY)
    return int(item["version"]) if item else 0


def migrate(accounts_table: str, organisations_table: str) -> int:
    """Give every account an organisation; how many were founded."""
    if version(organisations_table) >= CURRENT_VERSION:
        return 0
    store = OrganisationStore(organisations_table)
    founded = 0
    # The whole list first: nothing below writes to the Accounts table, but a list read
    # before any write keeps the run's view of the accounts one view.
    for account in list(_accounts(accounts_table)):
        if store.membership(account["user_id"]) is not None:
            continue
        found_solo(
            store,
            account["user_id"],
            account["email"],
            account["name"],
            int(account["created_at"]),
        )
        founded += 1
    dynamo.client().put_item(
        TableName=organisations_table,
        Item=dynamo.to_ddb({**SCHEMA_KEY, "version": CURRENT_VERSION}),
    )
    return founded


def _accounts(table: str) -> Iterator[dict[str, Any]]:
    """The profile items (`USER#...`) of the Accounts table."""
    request: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "begins_with(pk, :user)",
        "ExpressionAttributeValues": {":user": {"S": "USER#"}},
        "ConsistentRead": True,
    }
    for _ in range(_MAX_PASSES):
        page = dynamo.client().scan(**request)
        for raw in page.get("Items", []):
            yield dynamo.from_ddb(raw)
        last = page.get("LastEvaluatedKey")
        if not last:
            return
        request["ExclusiveStartKey"] = last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts-table", required=True)
    parser.add_argument("--organisations-table", required=True)
    args = parser.parse_args()
    founded = migrate(args.accounts_table, args.organisations_table)
    print(f"{args.organisations_table}: {founded} organisations founded")


if __name__ == "__main__":
    main()
