"""Page cursors (townhall.store.cursors) are opaque but checked whole: what a list handed out
comes back as it was; anything edited, truncated, padded with fields or of another shape is
one clear InvalidInput, never a KeyError or a 500."""

from __future__ import annotations

import base64
import json
import re

import pytest

from townhall.errors import InvalidInput
from townhall.store import cursors

SHAPE: dict[str, re.Pattern[str] | range] = {"h": re.compile(r"u_[0-9a-f]{4}"), "o": range(1, 100)}


def _raw(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def test_a_cursor_comes_back_as_it_was_handed_out() -> None:
    cursor = cursors.encode({"h": "u_beef", "o": 40})
    assert cursors.decode(cursor, SHAPE) == {"h": "u_beef", "o": 40}


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not base64 at all!",
        "x" * (cursors.MAX_CURSOR + 1),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        _raw([1, 2]),
        _raw({"h": "u_beef"}),  # a field missing
        _raw({"h": "u_beef", "o": 4, "x": 1}),  # a field more
        _raw({"h": "u_BEEF", "o": 4}),  # outside the pattern
        _raw({"h": "u_beef", "o": 0}),  # outside the range
        _raw({"h": "u_beef", "o": True}),  # a bool is no offset
        _raw({"h": 7, "o": 4}),
        cursors.encode({"h": "u_beef", "o": 40})[:-2],  # truncated
    ],
)
def test_anything_else_is_refused_cleanly(cursor: str) -> None:
    with pytest.raises(InvalidInput, match="cursor is not valid"):
        cursors.decode(cursor, SHAPE)
