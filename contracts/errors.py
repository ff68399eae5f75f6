"""The errors both sides of a contract raise.

The control plane maps them to its domain errors (`townhall.errors`), the media node to its
wire errors (`contracts.node_api.ErrorCode`); neither side's error types leak into the other.
"""

from __future__ import annotations


class TokenRejected(Exception):
    """A token failed verification. `message` names the check that failed, in words a caller
    may see ("media token has expired", "media token is for another meeting", ...)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
