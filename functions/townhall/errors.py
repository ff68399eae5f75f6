"""Errors the domain raises. Each adapter maps them to its own wire form (HTTP status or a
signaling error reply), so the domain never knows which transport called it."""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses. `code` is stable and machine-readable."""

    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    code = "invalid_input"


class Unauthenticated(DomainError):
    code = "unauthenticated"


class Forbidden(DomainError):
    code = "forbidden"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class Gone(DomainError):
    """The thing existed but is over: an ended meeting, a removed participant."""

    code = "gone"
