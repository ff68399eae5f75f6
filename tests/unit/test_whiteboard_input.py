"""Whiteboard stroke points: pairs of numbers in 0..1, kept to four decimals."""

from __future__ import annotations

from typing import Any

import pytest

from townhall.errors import InvalidInput
from townhall.signaling.actions.whiteboard import _points


def test_points_are_rounded_to_four_decimals() -> None:
    assert _points({"points": [[0, 1], [0.123456, 0.99999]]}) == ((0.0, 1.0), (0.1235, 1.0))


@pytest.mark.parametrize(
    "points",
    [
        [[0, 0]],
        [[0, 0]] * 1001,
        [[0, 0], [1.01, 0]],
        [[0, 0], [-0.1, 0]],
        [[0, 0], [0, 0, 0]],
        [[0, 0], [True, 0]],
        [[0, 0], ["0.5", 0]],
        [[0, 0], {"x": 0, "y": 0}],
        [[0, 0], [float("nan"), 0]],
        "0,0 1,1",
    ],
)
def test_bad_points_are_refused(points: Any) -> None:
    with pytest.raises(InvalidInput):
        _points({"points": points})
