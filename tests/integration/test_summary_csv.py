"""The summary's CSV rendering on its own: RFC 4180 quoting and the formula-injection guard."""

from __future__ import annotations

import csv
import io

from townhall.api.csv_export import render, safe_cell


def test_cells_that_a_spreadsheet_would_run_get_an_apostrophe() -> None:
    for text in ("=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx"):
        assert safe_cell(text) == "'" + text
    for text in ("plain", "a=b", " =x", "", "1-2"):
        assert safe_cell(text) == text
    assert safe_cell(None) == ""
    assert safe_cell(-3) == -3  # numbers we write are not user text


def test_quotes_commas_and_line_breaks_round_trip() -> None:
    summary = {
        "chat": [
            {"at": "2026-11-21T10:00:00Z", "from_name": 'Ann, "A"', "text": "line 1\nline 2"},
            {"at": "2026-11-21T10:01:00Z", "from_name": "=evil()", "text": "-1"},
        ]
    }
    text = render(summary, "chat")
    assert text.endswith("\r\n")
    assert list(csv.reader(io.StringIO(text))) == [
        ["at", "from_name", "text"],
        ["2026-11-21T10:00:00Z", 'Ann, "A"', "line 1\nline 2"],
        ["2026-11-21T10:01:00Z", "'=evil()", "'-1"],
    ]
