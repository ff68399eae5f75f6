"""The control API's wire form: JSON bodies read under a size cap, and JSON errors.

Shared by the worker's API and the supervisor's front, so a caller sees the same errors
whichever process answered.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

# An SDP offer with a dozen m-lines and candidates is 5-15 KiB; 64 KiB leaves room for more
# slots and bounds what one request can make the node buffer.
MAX_BODY_BYTES = 64 * 1024
DRAIN_LIMIT_BYTES = 1024 * 1024


class WireError(Exception):
    """A refused request: HTTP status, stable code, human message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


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
        raise WireError(413, "payload_too_large", f"request body is larger than {limit} bytes")
    return b"".join(chunks)


def parse_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(400, "invalid_json", "request body is not valid JSON") from exc
    if not isinstance(document, dict):
        raise WireError(400, "invalid_input", "request body must be a JSON object")
    return document
