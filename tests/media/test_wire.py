"""The control API's body parser (media_fleet.service.wire), and the supervisor's front that
runs it first: every unreadable body is the API's JSON 400, never a 500."""

from __future__ import annotations

import json
from typing import Any, cast

import httpx
import pytest

from media_fleet.service.front import front_app
from media_fleet.service.wire import MAX_DEPTH, WireError, parse_object
from media_fleet.service.workers import WorkerPool

NOT_UNICODE = "request body has text that is not valid Unicode"


def nested(levels: int) -> bytes:
    return b'{"a": ' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (b"[" * 20_000, "invalid_json", "request body is nested too deeply"),
        (nested(MAX_DEPTH + 1), "invalid_json", "request body is nested too deeply"),
        ('{"a": "b"}'.encode("utf-16"), "invalid_json", "request body is not UTF-8"),
        ('{"a": "b"}'.encode("utf-32"), "invalid_json", "request body is not UTF-8"),
        (b'{"a": "\xe9"}', "invalid_json", "request body is not UTF-8"),
        (b'\xef\xbb\xbf{"a": 1}', "invalid_json", "request body is not valid JSON"),
        (b'{"a": ' + b"1" * 4301 + b"}", "invalid_json", "request body is not valid JSON"),
        (b'{"a": "\\ud800"}', "invalid_input", NOT_UNICODE),
        (b'{"a": ["x", {"b": "\\udfff"}]}', "invalid_input", NOT_UNICODE),
        (b'{"\\udc00": 1}', "invalid_input", NOT_UNICODE),
        (b'{"a": "\\ude00\\ud83d"}', "invalid_input", NOT_UNICODE),  # a pair, reversed
        (b"[]", "invalid_input", "request body must be a JSON object"),
    ],
    ids=[
        "open-brackets-20000",
        "deeper-than-max-depth",
        "utf-16",
        "utf-32",
        "latin-1",
        "utf-8-bom",
        "integer-4301-digits",
        "lone-high-surrogate",
        "lone-low-surrogate-nested",
        "surrogate-key",
        "reversed-pair",
        "array",
    ],
)
def test_unreadable_bodies_are_wire_errors(body: bytes, code: str, message: str) -> None:
    with pytest.raises(WireError) as refused:
        parse_object(body)
    assert (refused.value.status, refused.value.code, refused.value.message) == (
        400,
        code,
        message,
    )


@pytest.mark.parametrize(
    ("body", "document"),
    [
        (nested(MAX_DEPTH), {"a": json.loads(b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1))}),
        (b'{"a": "\\ud83d\\ude00"}', {"a": "\U0001f600"}),  # a surrogate pair: one character
        ('{"a": "é😀"}'.encode(), {"a": "é😀"}),
        (b'{"token": "t", "sdp": "v=0"}', {"token": "t", "sdp": "v=0"}),
    ],
    ids=["max-depth", "surrogate-pair", "non-ascii", "publish"],
)
def test_readable_bodies_parse(body: bytes, document: dict[str, Any]) -> None:
    assert parse_object(body) == document


@pytest.mark.parametrize(
    "body",
    [b"[" * 20_000, b'{"token": "\\ud800"}', '{"token": "a"}'.encode("utf-16")],
    ids=["deep", "surrogate", "utf-16"],
)
async def test_the_front_answers_unreadable_bodies_with_the_json_400(body: bytes) -> None:
    # The front parses before it routes, so no worker is needed (and none is reached).
    app = front_app(cast(WorkerPool, object()), "node-test", lambda: False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://front") as client:
            response = await client.post("/v1/publish", content=body)
    finally:
        await app.state.http.aclose()
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] in ("invalid_json", "invalid_input")
