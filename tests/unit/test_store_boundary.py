"""botocore's errors never leave store/: a store's public methods turn them into
StoreUnavailable (a domain error, 503 / `unavailable`), and nothing else changes."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from townhall.errors import DomainError, NotFound
from townhall.store import dynamo
from townhall.store.dynamo import StoreUnavailable


def _throttled() -> ClientError:
    return ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
        "Query",
    )


@dynamo.store_boundary
class _Store:
    def throttled(self) -> None:
        raise _throttled()

    def unreachable(self) -> None:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    def refuses(self) -> None:
        raise NotFound("no such thing")

    def answers(self) -> int:
        return 42

    def _private(self) -> None:
        raise _throttled()


def test_botocore_errors_leave_a_store_only_as_store_unavailable() -> None:
    store = _Store()
    for call in (store.throttled, store.unreachable):
        with pytest.raises(StoreUnavailable) as raised:
            call()
        assert isinstance(raised.value, DomainError) and raised.value.code == "unavailable"
        assert "try again" in raised.value.message
    with pytest.raises(NotFound):  # the domain's own errors pass as they are
        store.refuses()
    assert store.answers() == 42
    with pytest.raises(ClientError):  # inside the store, its own code still sees botocore's
        store._private()


def test_every_store_of_the_control_plane_has_the_boundary() -> None:
    import townhall.store

    stores = [
        cls
        for info in pkgutil.iter_modules(townhall.store.__path__)
        for cls in vars(importlib.import_module(f"townhall.store.{info.name}")).values()
        if inspect.isclass(cls)
        and cls.__name__.endswith("Store")
        and cls.__module__ == f"townhall.store.{info.name}"
    ]
    assert {cls.__name__ for cls in stores} >= {"MeetingStore", "SessionStore", "ChatStore"}
    for cls in stores:
        unguarded = [
            name
            for name, member in vars(cls).items()
            if not name.startswith("_")
            and callable(member)
            and getattr(member, "__wrapped__", None) is None
        ]
        assert unguarded == [], cls.__name__
