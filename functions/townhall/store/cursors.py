"""Opaque page cursors: what a list hands back as `next_cursor` and takes again as `cursor`.

A cursor is base64url of a small JSON object. It is opaque to clients, but it reaches a
DynamoDB key or an offset, so decoding checks it whole: the exact fields a list expects, each
a string matching its pattern (or a bounded integer), and nothing else. Anything else (edited,
truncated, from another list) is refused with one clear `InvalidInput`, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from townhall.errors import InvalidInput

T = TypeVar("T")
MAX_CURSOR = 400
# Page sizes every list accepts: a page is bounded whatever the client asks for.
DEFAULT_PAGE = 20
MAX_PAGE = 100


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode(fields: Mapping[str, str | int]) -> str:
    raw = json.dumps(dict(fields), separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, shape: Mapping[str, re.Pattern[str] | range]) -> dict[str, str | int]:
    """The fields of `cursor`, each checked against `shape` (a pattern for a string, a range
    for an integer); InvalidInput for anything else."""
    refused = InvalidInput("cursor is not valid: pass next_cursor from the previous page as is")
    if len(cursor) > MAX_CURSOR:
        raise refused
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        fields = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise refused from None
    if not isinstance(fields, dict) or set(fields) != set(shape):
        raise refused
    for name, rule in shape.items():
        value = fields[name]
        if isinstance(rule, range):
            if type(value) is not int or value not in rule:
                raise refused
        elif not isinstance(value, str) or not rule.fullmatch(value):
            raise refused
    return fields


def page_size(limit: int) -> int:
    return max(1, min(limit, MAX_PAGE))
