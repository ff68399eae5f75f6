"""Per-meeting counters that cap collaboration items (the `COLLAB` item of a meeting).

The join snapshot carries every poll and the whiteboard, so both are capped per meeting; the
counter is raised inside the same transaction as the item it counts, conditional on the cap.
"""

from __future__ import annotations

from typing import Any

from townhall.model.session import SessionKey
from townhall.store import dynamo
from townhall.store.keys import session_pk

COLLAB_SK = "COLLAB"


def collab_key(session: SessionKey) -> dict[str, str]:
    return {"pk": session_pk(session), "sk": COLLAB_SK}


def count_up(table: str, session: SessionKey, counter: str, cap: int) -> dict[str, Any]:
    """Raise `counter` by one, failing (on the COLLAB sort key) once it reached `cap`."""
    return dynamo.update(
        table,
        collab_key(session),
        "ADD #c :one",
        {":one": 1, ":cap": cap},
        condition="attribute_not_exists(#c) OR #c < :cap",
        names={"#c": counter},
    )


def counters(table: str, session: SessionKey) -> dict[str, Any]:
    return dynamo.get(table, collab_key(session)) or {}
