"""Poll input checks: options and choices are refused clearly, and accepted ones normalized."""

from __future__ import annotations

from typing import Any

import pytest

from townhall.errors import InvalidInput
from townhall.model.collaboration import Poll
from townhall.signaling.actions.polls import _choices, _options


def _poll(multiple: bool) -> Poll:
    return Poll(
        poll_id="pl_1",
        question="Q?",
        options=("a", "b", "c"),
        multiple=multiple,
        status="open",
        counts=(0, 0, 0),
        voters=0,
        created_at=0,
        created_by="p_1",
        version=1,
    )


SINGLE = _poll(multiple=False)
MULTI = _poll(multiple=True)


def test_options_are_trimmed_and_must_differ() -> None:
    assert _options({"options": ["  Yes ", "No"]}) == ["Yes", "No"]
    for bad in (["a"], ["a"] * 11, ["a", "a"], ["a", " a "], ["a", ""], ["a", 1], "ab", None):
        with pytest.raises(InvalidInput):
            _options({"options": bad})


@pytest.mark.parametrize(
    ("poll", "choices", "expected"),
    [(SINGLE, [2], [2]), (MULTI, [2, 0], [0, 2]), (MULTI, [1], [1])],
)
def test_valid_choices(poll: Poll, choices: list[int], expected: list[int]) -> None:
    assert _choices({"choices": choices}, poll) == expected


@pytest.mark.parametrize(
    ("poll", "choices"),
    [
        (SINGLE, [0, 1]),
        (SINGLE, []),
        (SINGLE, [3]),
        (SINGLE, [-1]),
        (SINGLE, [True]),
        (SINGLE, [1.0]),
        (SINGLE, "0"),
        (MULTI, [0, 0]),
        (MULTI, [0, 1, 2, 0]),
    ],
)
def test_invalid_choices(poll: Poll, choices: Any) -> None:
    with pytest.raises(InvalidInput):
        _choices({"choices": choices}, poll)
