"""The organisations migration (townhall.store.organisation_migration) converges: stopped
after any one of its writes and run again, later, it leaves both tables exactly as one
uninterrupted run does; an account already in an organisation keeps it.

DynamoDB is moto's, in process (the `aws` fixture and the stopping client of the sessions
migration's test)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from infra.twin.dynamodb import create_table_request
from tests.unit.test_migrations import Interrupted, StoppingClient, aws  # noqa: F401
from townhall.model.organisation import solo_org_id
from townhall.schema import ACCOUNTS, ORGANISATIONS
from townhall.store import dynamo
from townhall.store.organisation_migration import SCHEMA_KEY, migrate, version

ACCOUNTS_CREATED = 1_780_000_000
# An account that already belongs to an organisation, not its own (added by its owner).
MOVED = "u_moved"
OTHER_ORG = solo_org_id("u_0")


def _tables(db: Any, suffix: str) -> tuple[str, str]:
    names = (f"accounts-{suffix}", f"organisations-{suffix}")
    for spec, name in zip((ACCOUNTS, ORGANISATIONS), names, strict=True):
        db.create_table(**{**create_table_request(spec), "TableName": name})
    return names


def _seed(db: Any, suffix: str) -> tuple[str, str]:
    accounts, organisations = _tables(db, suffix)
    users = [f"u_{n}" for n in range(5)] + [MOVED]
    for n, user_id in enumerate(users):
        for pk in (f"USER#{user_id}", f"EMAIL#{user_id}@example.com"):
            db.put_item(
                TableName=accounts,
                Item=dynamo.to_ddb(
                    {
                        "pk": pk,
                        "user_id": user_id,
                        "email": f"{user_id}@example.com",
                        "name": f"Person {n}",
                        "created_at": ACCOUNTS_CREATED + n,
                    }
                ),
            )
    db.put_item(
        TableName=organisations,
        Item=dynamo.to_ddb(
            {
                "pk": f"USER#{MOVED}",
                "sk": "MEMBERSHIP",
                "user_id": MOVED,
                "org_id": OTHER_ORG,
                "org_sk": f"MEMBER#{MOVED}",
                "role": "admin",
                "email": f"{MOVED}@example.com",
                "name": "Moved",
                "joined_at": ACCOUNTS_CREATED + 99,
            }
        ),
    )
    return accounts, organisations


def _scan(db: Any, table: str) -> list[dict[str, Any]]:
    items = [
        dynamo.from_ddb(raw)
        for page in db.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
        for raw in page["Items"]
    ]
    return sorted(items, key=lambda i: (i["pk"], i.get("sk", "")))


def _migrate(names: tuple[str, str], monkeypatch: pytest.MonkeyPatch, allowed: int | None) -> int:
    stopping = StoppingClient(dynamo.client(), allowed)
    with monkeypatch.context() as patch:
        patch.setattr(dynamo, "client", lambda: stopping)
        migrate(*names)
    return stopping.writes


@pytest.mark.usefixtures("aws")
def test_every_account_owns_an_organisation_after_one_run() -> None:
    db = boto3.client("dynamodb")
    names = _seed(db, "clean")
    accounts_before = _scan(db, names[0])
    assert version(names[1]) == 0
    assert migrate(*names) == 5
    items = _scan(db, names[1])
    memberships = {i["user_id"]: i for i in items if i["sk"] == "MEMBERSHIP"}
    orgs = {i["org_id"]: i for i in items if i["sk"] == "META" and i["pk"].startswith("ORG#")}
    for n in range(5):
        member = memberships[f"u_{n}"]
        assert (member["org_id"], member["role"]) == (solo_org_id(f"u_{n}"), "owner")
        assert orgs[member["org_id"]]["created_at"] == ACCOUNTS_CREATED + n
        assert orgs[member["org_id"]]["name"] == f"Person {n}'s organisation"
    # The account already in an organisation keeps it, and founds none.
    assert memberships[MOVED]["org_id"] == OTHER_ORG
    assert solo_org_id(MOVED) not in orgs
    assert version(names[1]) == 1
    assert _scan(db, names[0]) == accounts_before  # the accounts are only read
    # Once done, done.
    assert migrate(*names) == 0
    assert _scan(db, names[1]) == items


@pytest.mark.usefixtures("aws")
def test_a_run_stopped_after_any_write_and_run_again_ends_as_one_clean_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = boto3.client("dynamodb")
    clean = _seed(db, "clean")
    writes = _migrate(clean, monkeypatch, None)
    assert writes == 6  # five foundings, then the version
    expected = _scan(db, clean[1])
    for stop_after in range(writes):
        names = _seed(db, f"stopped-{stop_after}")
        with pytest.raises(Interrupted):
            _migrate(names, monkeypatch, stop_after)
        assert version(names[1]) == 0
        _migrate(names, monkeypatch, None)
        assert _scan(db, names[1]) == expected, f"stopped after {stop_after} writes"
    # Stopped twice, then finished.
    names = _seed(db, "twice")
    for allowed in (2, 1):
        with pytest.raises(Interrupted):
            _migrate(names, monkeypatch, allowed)
    _migrate(names, monkeypatch, None)
    assert _scan(db, names[1]) == expected


@pytest.mark.usefixtures("aws")
def test_the_version_is_written_last(monkeypatch: pytest.MonkeyPatch) -> None:
    db = boto3.client("dynamodb")
    names = _seed(db, "almost")
    with pytest.raises(Interrupted):
        _migrate(names, monkeypatch, 5)
    assert db.get_item(TableName=names[1], Key=dynamo.to_ddb(SCHEMA_KEY)).get("Item") is None
    assert migrate(*names) == 0  # every account was done: only the version is left to write
    assert version(names[1]) == 1
