"""The control API's wire form: JSON bodies read under a size cap, and JSON errors.

Shared by the worker's API and the supervisor's front, so a caller sees the same errors
whichever process answered. The error codes, their statuses and the body cap are the contract
in `contracts.node_api`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from contracts.node_api import ERROR_STATUS, MAX_BODY_BYTES, ErrorCode, error_body

__all__ = ["MAX_BODY_BYTES", "MAX_DEPTH", "WireError", "error_response", "parse_object"]

DRAIN_LIMIT_BYTES = 1024 * 1024
# The API's bodies are flat objects of strings. A fixed depth limit refuses a deep body the
# same way whatever the parser's stack depth (where a RecursionError would start).
MAX_DEPTH = 32
_TOO_DEEP = "request body is nested too deeply"


class WireError(Exception):
    """A refused request: stable code, human message, and the code's HTTP status."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = ERROR_STATUS[code]
        self.message = message


def error_response(code: ErrorCode, message: str, *, status: int | None = None) -> JSONResponse:
    """The JSON error; `status` only where it is not the code's own (a framework's 4xx)."""
    return JSONResponse(
        error_body(code, message), status_code=ERROR_STATUS[code] if status is None else status
    )


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The whole body, or WireError 413 when it is larger than `limit`.

    An oversized body is still read (and dropped) up to `DRAIN_LIMIT_BYTES`, so a client that
    is still sending gets the 413 rather than a reset connection; past that we stop reading.
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif size > DRAIN_LIMIT_BYTES:
            break
    if size > limit:
        raise WireError(ErrorCode.PAYLOAD_TOO_LARGE, f"request body is larger than {limit} bytes")
    return b"".join(chunks)


def parse_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or WireError 400 for anything the API cannot read.

    Refused as ``invalid_json``: a body that is not UTF-8 (RFC 8259 section 8.1; json.loads
    would otherwise guess UTF-16 or UTF-32), not JSON, an integer longer than Python converts
    (a ValueError that is not a JSONDecodeError), or nested deeper than ``MAX_DEPTH``. Refused
    as ``invalid_input``: a document that is not an object, or text that is not valid
    Unicode (a lone surrogate from a ``\\ud800`` escape), which no caller could encode again.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError(ErrorCode.INVALID_JSON, "request body is not UTF-8") from exc
    try:
        document = json.loads(text)
    except RecursionError as exc:
        raise WireError(ErrorCode.INVALID_JSON, _TOO_DEEP) from exc
    except ValueError as exc:
        raise WireError(ErrorCode.INVALID_JSON, "request body is not valid JSON") from exc
    if not isinstance(document, dict):
        raise WireError(ErrorCode.INVALID_INPUT, "request body must be a JSON object")
    _check_text_and_depth(document)
    return document


def _check_text_and_depth(document: dict[str, Any]) -> None:
    # Iterative, so that a deep document cannot overflow the stack here either; it visits
    # each value once, and there are fewer values than body bytes.
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise WireError(ErrorCode.INVALID_JSON, _TOO_DEEP)
            items: Iterable[Any] = value
            if isinstance(value, dict):
                for key in value:
                    _check_text(key)
                items = value.values()
            pending.extend((item, depth + 1) for item in items)


def _check_text(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise WireError(
            ErrorCode.INVALID_INPUT, "request body has text that is not valid Unicode"
        ) from exc
