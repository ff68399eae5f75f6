"""The twin's route selection (`$request.body.action`) on any text or binary frame: a known
action's route, else `$default`, and never an exception (one used to end the task that reads
the socket, so a deeply nested frame got no answer at all)."""

from __future__ import annotations

import json
import sys

import pytest

from infra.twin.websocket_api import DEFAULT_ROUTE, select_route
from townhall import routes


def _nested(depth: int, opening: str, closing: str, inner: str = "1") -> str:
    return opening * depth + inner + closing * depth


@pytest.mark.parametrize("depth", [1, 500, sys.getrecursionlimit() + 1, 20_000, 200_000])
@pytest.mark.parametrize(("opening", "closing"), [("[", "]"), ('{"a":', "}")])
def test_deeply_nested_json_goes_to_default(depth: int, opening: str, closing: str) -> None:
    assert select_route(_nested(depth, opening, closing)) == DEFAULT_ROUTE


@pytest.mark.parametrize("depth", [10, 200_000])
def test_an_action_with_deeply_nested_data_is_still_a_frame_answered(depth: int) -> None:
    """Nesting the parser takes: the action's route. Past it, API Gateway cannot evaluate
    the selection expression either: `$default`, which answers the frame."""
    frame = '{"action": "chat", "data": ' + _nested(depth, "[", "]") + "}"
    try:
        json.loads(frame)
    except RecursionError:
        expected = DEFAULT_ROUTE
    else:
        expected = "chat"
    assert select_route(frame) == expected
    assert select_route(frame.encode()) == DEFAULT_ROUTE  # a binary frame never selects


@pytest.mark.parametrize(
    "frame",
    [
        "",
        "not json",
        "null",
        "[]",
        '["chat"]',
        '{"action": 5}',
        '{"action": ["chat"]}',
        '{"action": "$connect"}',
        '{"action": "CHAT"}',
        '{"action": "chat\\u0000"}',
        '{"action": "\\ud800"}',
        '{"action": "chat", "action": "nope"}',
        '{"action": ' + "9" * 5000 + "}",
        '{"action": "chat"',
    ],
)
def test_anything_but_a_known_action_goes_to_default(frame: str) -> None:
    assert select_route(frame) == DEFAULT_ROUTE


def test_each_known_action_selects_its_own_route() -> None:
    for action in routes.ACTIONS:
        assert select_route(json.dumps({"action": action, "data": {"x": [[[]]]}})) == action
