"""The action table names exactly the WebSocket API's routes, and documents each one."""

from __future__ import annotations

import inspect
from pathlib import Path

from townhall import routes
from townhall.signaling.table import ACTIONS


def test_every_route_has_exactly_one_action_and_no_action_lacks_a_route() -> None:
    assert sorted(ACTIONS) == sorted(routes.ACTIONS)
    assert len(routes.ACTIONS) == len(set(routes.ACTIONS))


def test_every_action_is_a_plain_function_of_an_action_module() -> None:
    for name, action in ACTIONS.items():
        assert inspect.isfunction(action), name
        assert action.__module__.startswith("townhall.signaling.actions."), name
        assert list(inspect.signature(action).parameters) == ["ctx", "caller", "request"], name


def test_every_action_is_documented() -> None:
    documented = (Path(__file__).parents[2] / "docs" / "signaling.md").read_text()
    assert [a for a in routes.ACTIONS if f"`{a}`" not in documented] == []
