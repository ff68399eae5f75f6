"""A throwaway DynamoDB (moto's server in its own process) for the registry, placement and
node life-cycle tests, one per test module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from infra.twin.dynamodb import LocalDynamoDB


@pytest.fixture(scope="module")
def db() -> Iterator[LocalDynamoDB]:
    with LocalDynamoDB(None).start() as local:
        yield local


@pytest.fixture
def client(db: LocalDynamoDB) -> Iterator[Any]:
    client = db.new_client()
    yield client
    client.close()
