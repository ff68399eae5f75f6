"""Ids for items people create in a meeting (polls, questions): random, so an id from another
meeting never names anything in this one, and nobody can guess the next one."""

from __future__ import annotations

import secrets

_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(12))
