"""Fuzz target: the control API's body parser (media_fleet.service.wire), and the front's
unverified read of the token's meeting id behind it.

Every control request (publish, subscribe, answer, leave) reaches ``parse_object`` with the
raw body (up to ``MAX_BODY_BYTES``), in the supervisor's front and again in the worker. The
front then reads the meeting id from the token without verifying it
(``routing.unverified_meeting_id``) to choose the worker.

Contract: ``parse_object`` returns a dict or raises WireError 400 (``invalid_json`` or
``invalid_input``), which the API answers as its JSON error; nothing else, since anything
else is a 500 (a plain-text one from the front). A returned document holds only text that
is valid Unicode, so it can be written back as UTF-8 JSON (to logs, to a room) and read
again unchanged. ``unverified_meeting_id`` returns None or a non-empty str that
``worker_for`` can route on.
"""

from __future__ import annotations

import contextlib
import json
import json.decoder
import json.scanner
import math
from typing import Any

from tests.fuzz import harness

with harness.instrumented(__name__):
    from media_fleet.service.routing import unverified_meeting_id, worker_for
    from media_fleet.service.wire import WireError, parse_object

# json's C scanner gives the fuzzer no coverage signal, so without help it mutates blindly.
# The pure-Python scanner reads the same grammar: run first, instrumented, on every input,
# its coverage steers the fuzzer into JSON's structure. Its result is not used: the contract
# is checked on parse_object, which runs the C scanner as the node does.
harness.instrument_module(json.decoder, __name__)
harness.instrument_module(json.scanner, __name__)
_GUIDE = json.JSONDecoder()
_GUIDE.parse_string = json.decoder.py_scanstring  # type: ignore[attr-defined]
_GUIDE.scan_once = json.scanner.py_make_scanner(_GUIDE)  # type: ignore[attr-defined]


def _guide(data: bytes) -> None:
    with contextlib.suppress(ValueError, RecursionError):
        _GUIDE.decode(data.decode("utf-8"))


def _same(a: Any, b: Any) -> bool:
    """Equality that treats NaN as equal to itself (json.loads accepts NaN)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def check(data: bytes) -> None:
    _guide(data)
    try:
        document = parse_object(data)
    except WireError as error:
        assert error.status == 400 and error.code in ("invalid_json", "invalid_input"), error
        return
    assert isinstance(document, dict)
    written = json.dumps(document, ensure_ascii=False).encode("utf-8")  # no lone surrogate
    assert _same(parse_object(written), document), data
    meeting_id = unverified_meeting_id(document.get("token"))
    assert meeting_id is None or (isinstance(meeting_id, str) and meeting_id), meeting_id
    if meeting_id is not None:
        assert 0 <= worker_for(meeting_id, 4) < 4  # the front routes on it


if __name__ == "__main__":
    harness.main(check)
