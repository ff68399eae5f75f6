"""Ids for what people create (meetings, sessions, polls, questions): random, so an id from
one meeting never names anything in another, and nobody can guess the next one."""

from __future__ import annotations

import secrets

# No look-alikes (0/o, 1/l/i): people read meeting links aloud.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_id(prefix: str, length: int = 12) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_meeting_id() -> str:
    return new_id("", 10)


def new_session_id() -> str:
    return new_id("s_")
