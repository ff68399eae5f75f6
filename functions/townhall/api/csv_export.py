"""CSV downloads of a meeting summary, safe to open in a spreadsheet.

Quoting is the csv module's (RFC 4180: fields with commas, quotes or line breaks are quoted,
quotes doubled). A cell that starts with = + - @ (or a tab or carriage return) would be run as
a formula by spreadsheet software, so it gets a leading apostrophe (OWASP's advice on CSV
injection); people's names and chat text are what an attacker controls.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any, Literal

Part = Literal["attendance", "rooms", "chat", "polls"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def _render(header: list[str], rows: Iterable[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()


def render(summary: dict[str, Any], part: Part) -> str:
    if part == "attendance":
        return _render(
            ["name", "role", "participant_id", "joined_at", "left_at", "total_seconds"],
            (
                [
                    a["name"],
                    a["role"],
                    a["participant_id"],
                    s["joined_at"],
                    s["left_at"],
                    a["total_seconds"],
                ]
                for a in summary["attendance"]
                for s in a["intervals"]
            ),
        )
    if part == "rooms":
        return _render(
            ["name", "participant_id", "room", "from", "to"],
            (
                [a["name"], a["participant_id"], s["room"], s["from"], s["to"]]
                for a in summary["attendance"]
                for s in a.get("rooms", [])
            ),
        )
    if part == "chat":
        return _render(
            ["at", "from_name", "text"],
            ([m["at"], m["from_name"], m["text"]] for m in summary["chat"]),
        )
    return _render(
        ["poll", "status", "voters", "option", "votes"],
        (
            [p["question"], p["status"], p["voters"], option, count]
            for p in summary["polls"]
            for option, count in zip(p["options"], p["counts"], strict=False)
        ),
    )
