"""Which worker process owns a meeting.

A meeting lives on exactly one worker (one event loop, one core) until cascading between
workers exists: its forwarding needs every publisher and subscriber in one process. The front
picks the worker from the token's meeting id *without* verifying the token; that is safe
because the worker verifies it fully, and a forged meeting id only picks which worker refuses.
"""

from __future__ import annotations

import hashlib
from typing import Any

import jwt


def worker_for(meeting_id: str, workers: int) -> int:
    """A stable index in [0, workers): the same meeting always lands on the same worker,
    in every process and across restarts (Python's own hash() is salted per process)."""
    if workers < 1:
        raise ValueError("there must be at least one worker")
    digest = hashlib.sha256(meeting_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % workers


def unverified_meeting_id(token: Any) -> str | None:
    """The `mid` claim of a JWT, read without checking anything, or None."""
    if not isinstance(token, str):
        return None
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    mid = claims.get("mid")
    if not isinstance(mid, str) or not mid:
        return None
    try:
        mid.encode("utf-8")  # a lone surrogate (a "\\ud800" escape in the token) is no id
    except UnicodeEncodeError:
        return None
    return mid
