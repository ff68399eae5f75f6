"""The twin's DynamoDB isolates concurrent writes as DynamoDB does.

moto serves each request on its own thread and its backend takes no lock, so without the twin's
serialization two transactions conditional on the same `rev` could both commit and two `ADD`s
could return the same value. DynamoDB's single-item writes are atomic and its transactions
serializable; these tests race real clients against the twin's moto server process and check
exactly that outcome.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.twin import moto_server
from infra.twin.dynamodb import LocalDynamoDB
from townhall.schema import KeySpec, TableSpec

TABLE = "townhall-isolation"
WORKERS = 12


@pytest.fixture(scope="module")
def database() -> Iterator[LocalDynamoDB]:
    spec = TableSpec("Isolation", "ISOLATION_TABLE", KeySpec("pk"), KeySpec("sk"))
    with pytest.MonkeyPatch.context() as env:
        # Preempt moto's threads often, so that a race shows within these few hundred rounds
        # (without the twin's isolation, `TWIN_DYNAMODB_ISOLATION=off`, every test here fails).
        env.setenv(moto_server.SWITCH_INTERVAL_VARIABLE, "0.000001")
        database = LocalDynamoDB(None, tables=[spec]).start()
    with database as db:
        yield db


@pytest.fixture
def clients(database: LocalDynamoDB) -> list[Any]:
    # A client per worker: each has its own connection, so the requests truly overlap.
    return [database.new_client() for _ in range(WORKERS)]


def _race(clients: list[Any], work: Callable[[int, Any], Any]) -> list[Any]:
    """Run `work(i, client)` on every worker at once (released together by a barrier)."""
    barrier = threading.Barrier(len(clients), timeout=30)

    def run(i: int) -> Any:
        barrier.wait()
        return work(i, clients[i])

    with ThreadPoolExecutor(len(clients)) as pool:
        return list(pool.map(run, range(len(clients)), timeout=120))


def _key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "META"}}


def test_transactions_conditional_on_the_same_rev_commit_once(clients: list[Any]) -> None:
    rounds = 80
    clients[0].put_item(TableName=TABLE, Item={**_key("rev"), "rev": {"N": "0"}})
    winners_per_round: list[int] = []
    for rev in range(rounds):

        def bump(i: int, client: Any, rev: int = rev) -> bool:
            try:
                client.transact_write_items(
                    TransactItems=[
                        {
                            "Update": {
                                "TableName": TABLE,
                                "Key": _key("rev"),
                                "UpdateExpression": "SET #rev = :next, winner = :me",
                                "ConditionExpression": "#rev = :seen",
                                "ExpressionAttributeNames": {"#rev": "rev"},
                                "ExpressionAttributeValues": {
                                    ":seen": {"N": str(rev)},
                                    ":next": {"N": str(rev + 1)},
                                    ":me": {"N": str(i)},
                                },
                            }
                        },
                        {"Put": {"TableName": TABLE, "Item": {**_key(f"log-{rev}-{i}")}}},
                    ]
                )
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "TransactionCanceledException"
                return False
            return True

        winners_per_round.append(sum(_race(clients, bump)))
        if winners_per_round[-1] != 1:
            break
    assert winners_per_round == [1] * rounds
    # And a cancelled transaction wrote none of its items.
    logs = clients[0].scan(
        TableName=TABLE,
        FilterExpression="begins_with(pk, :log)",
        ExpressionAttributeValues={":log": {"S": "log-"}},
    )["Items"]
    assert len(logs) == rounds


def test_concurrent_adds_return_distinct_values(clients: list[Any]) -> None:
    per_worker = 120  # 1,440 in all, as in the case that found the defect

    def add(i: int, client: Any) -> list[int]:
        seen = []
        for _ in range(per_worker):
            answer = client.update_item(
                TableName=TABLE,
                Key=_key("counter"),
                UpdateExpression="ADD seq :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
                ReturnValues="UPDATED_NEW",
            )
            seen.append(int(answer["Attributes"]["seq"]["N"]))
        return seen

    values = [v for seen in _race(clients, add) for v in seen]
    assert sorted(values) == list(range(1, WORKERS * per_worker + 1))


def test_a_conditional_create_succeeds_once(clients: list[Any]) -> None:
    for n in range(40):

        def create(i: int, client: Any, n: int = n) -> bool:
            try:
                client.put_item(
                    TableName=TABLE,
                    Item={**_key(f"once-{n}"), "by": {"N": str(i)}},
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"
                return False
            return True

        assert sum(_race(clients, create)) == 1


def test_a_read_never_sees_half_of_a_transaction(clients: list[Any]) -> None:
    """TransactGetItems is serializable against TransactWriteItems: the two items a writer
    always changes together are read equal, never one old and one new."""
    for side in ("a", "b"):
        clients[0].put_item(TableName=TABLE, Item={**_key(f"pair-{side}"), "v": {"N": "0"}})
    writes = 100

    def work(i: int, client: Any) -> list[tuple[int, int]]:
        pairs = []
        for n in range(1, writes + 1):
            if i == 0:
                client.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": TABLE,
                                "Item": {**_key(f"pair-{side}"), "v": {"N": str(n)}},
                            }
                        }
                        for side in ("a", "b")
                    ]
                )
            else:
                got = client.transact_get_items(
                    TransactItems=[
                        {"Get": {"TableName": TABLE, "Key": _key(f"pair-{side}")}}
                        for side in ("a", "b")
                    ]
                )["Responses"]
                pairs.append((int(got[0]["Item"]["v"]["N"]), int(got[1]["Item"]["v"]["N"])))
        return pairs

    torn = [(a, b) for pairs in _race(clients, work) for a, b in pairs if a != b]
    assert torn == []
