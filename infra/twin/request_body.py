"""Reading an HTTP request body under a size limit, as API Gateway's payload limits require."""

from __future__ import annotations

from starlette.requests import Request


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The whole body, or None when it is larger than `limit` bytes.

    An oversized body is still read to its end (and dropped) rather than left unread, so the
    client, which may still be sending it, gets the 413 instead of a reset connection.
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        else:
            chunks.clear()
    return b"".join(chunks) if size <= limit else None
