"""An event of a session for others to hear: what happened, and to whom it goes.

Every change others must hear about is kept as an `OutboxEvent` in the same transaction as the
change (`townhall.store.outbox` stores it, `townhall.store.writes.PublishEvent` asks for it), so
an event exists exactly when its change committed. The fan-out consumer delivers it, and later
consumers (webhooks, the broadcast's audience state, recording triggers) read the same record:
its type, meeting, session, place in the session's order (`seq`, and `n` for a further event
of the same commit), time, payload and schema version. See docs/outbox.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

RECORD_VERSION = 1
MODERATOR_ROLES = frozenset({"host", "cohost"})
# Bounds a record's lists, so a malformed item cannot make a consumer loop for long.
MAX_AUDIENCE_IDS = 2000


class MalformedEvent(ValueError):
    """A record that is not a readable event."""


@dataclass(frozen=True)
class Audience:
    """Who receives an event, decided against the roster when it is delivered.

    By default: every admitted participant with a connection. `connected` widens it to every
    connection of the session (waiting room included); `roles` narrows it to those roles;
    `only` to those participants; `rooms` to those in these rooms ("" is the main room; a
    breakout room's chat, reactions and whiteboard stay in it); `include` always adds those
    participants (if admitted) and `exclude` removes them; `connections` adds connection ids
    outright.
    """

    connected: bool = False
    roles: frozenset[str] | None = None
    only: frozenset[str] | None = None
    include: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()
    connections: tuple[str, ...] = ()
    rooms: frozenset[str] | None = None

    def matches(self, participant_id: str, status: str, role: str, room: str = "") -> bool:
        if participant_id in self.exclude:
            return False
        if self.connected:
            return True
        if status != "admitted":
            return False
        if self.only is not None and participant_id not in self.only:
            return False
        if self.rooms is not None and room not in self.rooms:
            return False
        if participant_id in self.include:
            return True
        return self.roles is None or role in self.roles

    def to_record(self) -> dict[str, Any]:
        item: dict[str, Any] = {}
        if self.connected:
            item["connected"] = True
        for name in ("roles", "only", "rooms"):
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
    def from_record(cls, item: Mapping[str, Any]) -> Audience:
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
            rooms=frozenset(ids("rooms")) if "rooms" in item else None,
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
    # Connections `close` spares: the caller's, which is waiting for its reply on it.
    keep_open: tuple[str, ...] = ()
    # "poll:<id>" or "question:<id>": the payload is that item's state, which the consumer
    # reads again at delivery (concurrent votes land between commit and delivery); the stored
    # payload is the state as this commit saw it.
    subject: str | None = None
    version: int = field(default=RECORD_VERSION)

    @property
    def event_id(self) -> str:
        """Unique within the session: what a client deduplicates by."""
        return f"{self.seq}.{self.n}" if self.n else str(self.seq)

    def to_record(self) -> dict[str, Any]:
        """The record's attributes (plain values); the store adds its keys and expiry."""
        record: dict[str, Any] = {
            "v": self.version,
            "type": self.type,
            "meeting_id": self.meeting_id,
            "session_id": self.session_id,
            "seq": self.seq,
            "n": self.n,
            "at": self.at,
            "payload": self.payload,
            "audience": self.audience.to_record(),
        }
        if self.close:
            record["close"] = True
        if self.keep_open:
            record["keep_open"] = list(self.keep_open)
        if self.subject:
            record["subject"] = self.subject
        return record

    @classmethod
    def from_record(cls, item: Mapping[str, Any]) -> OutboxEvent:
        """Read a record (plain values); MalformedEvent if it is not one this code knows."""
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
                audience=Audience.from_record(audience),
                at=int(item.get("at", 0)),
                close=item.get("close") is True,
                keep_open=_connection_ids(item.get("keep_open", [])),
                subject=_subject(item.get("subject")),
                version=version,
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, MalformedEvent):
                raise
            raise MalformedEvent(f"not an event record: {exc!r}") from exc


def _subject(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or ":" not in value or len(value) > 200:
        raise MalformedEvent("subject must be a short 'kind:id' string")
    return value


def _connection_ids(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_AUDIENCE_IDS:
        raise MalformedEvent("keep_open must be a bounded list")
    if not all(isinstance(v, str) for v in value):
        raise MalformedEvent("keep_open holds a non-string")
    return tuple(value)
