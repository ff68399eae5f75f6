"""The outbox's event record: what happened, to whom it goes, and how it is stored.

An `OutboxEvent` is written as one item in the session's partition, in the same transaction as
the change it reports, so an event exists exactly when its change committed. The table's
stream carries the item to the fan-out consumer, and later to every other consumer (webhooks,
the broadcast's audience state, recording triggers), so the record names its type, meeting,
session, place in the session's order (`seq`, and `n` for a second event of the same commit),
time, payload and schema version, and is readable without the code that wrote it.

Item layout (pk is the session's partition):

    sk      "E#{seq:012d}#{n:02d}"   sorts by commit order within the session
    v       schema version (RECORD_VERSION)
    type    the event's name (contracts.signaling_events.EventName value)
    meeting_id, session_id, seq, n, at (epoch ms)
    payload the event's data, as clients receive it
    audience who receives it (Audience.to_item())
    close   after delivery, close the receiving connections (the end of a session)
    ttl     epoch seconds: the item expires a day later; nothing reads it after delivery
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

RECORD_VERSION = 1
MODERATOR_ROLES = frozenset({"host", "cohost"})
EVENT_SK_PREFIX = "E#"
EVENT_TTL_SECONDS = 24 * 3600
# Bounds a record's lists, so a malformed item cannot make a consumer loop for long.
MAX_AUDIENCE_IDS = 2000


class MalformedEvent(ValueError):
    """An item under the event prefix that is not a readable event record."""


@dataclass(frozen=True)
class Audience:
    """Who receives an event, decided against the roster when it is delivered.

    By default: every admitted participant with a connection. `connected` widens it to every
    connection of the session (waiting room included); `roles` narrows it to those roles;
    `only` to those participants; `include` always adds those participants (if admitted) and
    `exclude` removes them; `connections` adds connection ids outright.
    """

    connected: bool = False
    roles: frozenset[str] | None = None
    only: frozenset[str] | None = None
    include: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()
    connections: tuple[str, ...] = ()

    def matches(self, participant_id: str, status: str, role: str) -> bool:
        if participant_id in self.exclude:
            return False
        if self.connected:
            return True
        if status != "admitted":
            return False
        if self.only is not None and participant_id not in self.only:
            return False
        if participant_id in self.include:
            return True
        return self.roles is None or role in self.roles

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {}
        if self.connected:
            item["connected"] = True
        for name in ("roles", "only"):
            value = getattr(self, name)
            if value is not None:
                item[name] = sorted(value)
        for name in ("include", "exclude"):
            value = getattr(self, name)
            if value:
                item[name] = sorted(value)
        if self.connections:
            item["connections"] = list(self.connections)
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Audience:
        def ids(name: str) -> list[str]:
            value = item.get(name, [])
            if not isinstance(value, list) or len(value) > MAX_AUDIENCE_IDS:
                raise MalformedEvent(f"audience.{name} is not a bounded list")
            if not all(isinstance(v, str) for v in value):
                raise MalformedEvent(f"audience.{name} holds a non-string")
            return value

        return cls(
            connected=item.get("connected") is True,
            roles=frozenset(ids("roles")) if "roles" in item else None,
            only=frozenset(ids("only")) if "only" in item else None,
            include=frozenset(ids("include")),
            exclude=frozenset(ids("exclude")),
            connections=tuple(ids("connections")),
        )


EVERYONE_ADMITTED = Audience()
MODERATORS = Audience(roles=MODERATOR_ROLES)


@dataclass(frozen=True)
class OutboxEvent:
    meeting_id: str
    session_id: str
    seq: int
    type: str
    payload: dict[str, Any]
    audience: Audience = EVERYONE_ADMITTED
    at: int = 0  # epoch ms
    n: int = 0
    close: bool = False
    version: int = field(default=RECORD_VERSION)

    @property
    def event_id(self) -> str:
        """Unique within the session: what a client deduplicates by."""
        return f"{self.seq}.{self.n}" if self.n else str(self.seq)

    def sort_key(self) -> str:
        return f"{EVENT_SK_PREFIX}{self.seq:012d}#{self.n:02d}"

    def to_item(self, pk: str) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": pk,
            "sk": self.sort_key(),
            "v": self.version,
            "type": self.type,
            "meeting_id": self.meeting_id,
            "session_id": self.session_id,
            "seq": self.seq,
            "n": self.n,
            "at": self.at,
            "payload": self.payload,
            "audience": self.audience.to_item(),
            "ttl": self.at // 1000 + EVENT_TTL_SECONDS,
        }
        if self.close:
            item["close"] = True
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> OutboxEvent:
        """Read a stored record (plain Python values, as store.dynamo.from_ddb gives them)."""
        try:
            version = int(item["v"])
            if version != RECORD_VERSION:
                raise MalformedEvent(f"unknown event record version {version}")
            payload = item["payload"]
            audience = item.get("audience", {})
            if not isinstance(payload, dict) or not isinstance(audience, dict):
                raise MalformedEvent("payload and audience must be maps")
            fields = {k: item[k] for k in ("type", "meeting_id", "session_id")}
            if not all(isinstance(v, str) and v for v in fields.values()):
                raise MalformedEvent("type, meeting_id and session_id must be strings")
            return cls(
                meeting_id=fields["meeting_id"],
                session_id=fields["session_id"],
                seq=int(item["seq"]),
                n=int(item.get("n", 0)),
                type=fields["type"],
                payload=payload,
                audience=Audience.from_item(audience),
                at=int(item.get("at", 0)),
                close=item.get("close") is True,
                version=version,
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, MalformedEvent):
                raise
            raise MalformedEvent(f"not an event record: {exc!r}") from exc
