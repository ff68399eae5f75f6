"""Delivering the outbox: a batch of stream records, posted to the connections each event
concerns, in order per connection.

Lambda's event source mapping hands the consumer up to a batch of the Meetings table's stream
records (new event items only, by its filter). For each session in the batch the roster is read
once, each event's audience is resolved against it, and every connection gets its messages in
commit order. A connection that answers 410 gets nothing more and is cleaned up afterwards
(its participant marked offline: itself a new event). An event marked `close` ends the
receiving connections after delivery (the end of a session).

A session with more connections than SLICE_CONNECTIONS is split into slices posted by
separate invocations of the slice function at once (the first slice here), each slice in
order, so a meeting of 1,000 finishes in about the time of one of 200.

Guarantee: at least once, in order per connection. A batch can be delivered again (a retry
after a failure further on, or after a timeout), so a client may receive an event twice; every
event carries an id unique in its session (`event_id`) and clients drop one they already have.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from townhall.model.event import MalformedEvent, OutboxEvent
from townhall.model.participant import Recipient
from townhall.model.session import SessionKey

logger = logging.getLogger(__name__)

# Connections one invocation posts to; a larger session is split into slices of this size.
SLICE_CONNECTIONS = 200
# A bound on the slices of one session in one batch (10,000 connections).
MAX_SLICES = 50
# What one slice invocation may carry (Lambda's synchronous payload limit is 6 MB).
MAX_SLICE_PAYLOAD_BYTES = 4 * 1024 * 1024
# Lambda's DynamoDB Streams batches are at most 10,000 records; ours are configured smaller.
MAX_RECORDS = 10_000


class RosterSource(Protocol):
    def recipients(self, session: SessionKey) -> list[Recipient]: ...


class MessagePoster(Protocol):
    def post_sequences(self, sequences: Sequence[tuple[str, Sequence[str]]]) -> list[str]: ...


class SubjectStates(Protocol):
    """The current state of an event's subject ("poll:<id>"), as the payload clients get."""

    def current(self, session: SessionKey, subject: str) -> dict[str, Any] | None: ...


class SlicePoster(Protocol):
    """Posts one slice through another invocation; returns the gone connection ids."""

    def post_slice(
        self, messages: list[str], deliveries: list[tuple[str, list[int]]]
    ) -> list[str]: ...


# (session, gone connection ids, the roster they were found in)
GoneHandler = Callable[[SessionKey, list[str], list[Recipient]], None]
Encoder = Callable[[OutboxEvent], str]


class PoisonedRecord(Exception):
    """The batch holds a record no retry can deliver (see OutboxFanout.deliver)."""


@dataclass(frozen=True)
class StreamRecord:
    sequence_number: str
    event: OutboxEvent | None
    problem: str | None = None


@dataclass
class SessionBatch:
    """The events of one session in one batch, in commit order."""

    key: SessionKey
    records: list[StreamRecord] = field(default_factory=list)


def read_records(
    event: Mapping[str, Any], read_image: Callable[[Mapping[str, Any]], OutboxEvent]
) -> list[StreamRecord]:
    """The batch's records in order; a record that is not a readable event keeps its sequence
    number and a `problem`, so it can be reported without stopping the rest."""
    raw = event.get("Records")
    if not isinstance(raw, list):
        raise MalformedEvent("the event has no Records list")
    records: list[StreamRecord] = []
    for record in raw[:MAX_RECORDS]:
        dynamodb = record.get("dynamodb") if isinstance(record, dict) else None
        sequence = dynamodb.get("SequenceNumber") if isinstance(dynamodb, dict) else None
        if not isinstance(sequence, str):
            raise MalformedEvent("a record has no dynamodb.SequenceNumber")
        try:
            image = dynamodb.get("NewImage")  # type: ignore[union-attr]
            if not isinstance(image, dict):
                raise MalformedEvent("the record has no NewImage")
            records.append(StreamRecord(sequence, read_image(image)))
        except (MalformedEvent, TypeError, ValueError) as exc:
            records.append(StreamRecord(sequence, None, str(exc)[:200]))
    return records


class OutboxFanout:
    def __init__(
        self,
        roster: RosterSource,
        poster: MessagePoster,
        encode: Encoder,
        *,
        on_gone: GoneHandler,
        close: Callable[[str], None],
        read_image: Callable[[Mapping[str, Any]], OutboxEvent],
        subjects: SubjectStates | None = None,
        slices: SlicePoster | None = None,
        slice_connections: int = SLICE_CONNECTIONS,
    ) -> None:
        self._roster = roster
        self._poster = poster
        self._encode = encode
        self._on_gone = on_gone
        self._close = close
        self._read_image = read_image
        self._subjects = subjects
        self._slices = slices
        self._slice_connections = slice_connections

    def handle(self, event: Mapping[str, Any]) -> list[str]:
        """A stream event in, the sequence numbers to report as failed out."""
        return self.deliver(read_records(event, self._read_image))

    def deliver(self, records: list[StreamRecord]) -> list[str]:
        """Deliver the batch; the sequence numbers to report as failed (the first failure:
        Lambda retries from there, so nothing after it is lost).

        A record that can never be delivered (malformed, or of a record version this code
        does not know) raises PoisonedRecord before anything is posted: a function error,
        which makes the event source mapping bisect the batch until the record is alone, so
        the records around it are delivered and it alone goes, after its retries, to the
        failure destination. Reporting it as a partial failure instead would hold every
        later record of the batch to its fate."""
        poisoned = [r for r in records if r.event is None]
        if poisoned:
            for record in poisoned:
                logger.error(
                    "outbox record %s is malformed: %s", record.sequence_number, record.problem
                )
            raise PoisonedRecord(f"{len(poisoned)} of {len(records)} records cannot be delivered")
        for batch in _by_session(records):
            try:
                self._deliver_session(batch)
            except Exception:
                logger.exception("delivering the events of a session failed; retrying the batch")
                return [batch.records[0].sequence_number]
        return []

    def _deliver_session(self, batch: SessionBatch) -> None:
        if not batch.records:
            return
        events = self._current([r.event for r in batch.records if r.event is not None], batch.key)
        roster = self._roster.recipients(batch.key)
        gone: list[str] = []
        closing: set[str] = set()
        for part in _parts([(e, self._encode(e)) for e in events]):
            messages = [message for _, message in part]
            per_connection: dict[str, list[int]] = {}
            for index, (event, _) in enumerate(part):
                for connection_id in _targets(event, roster):
                    if connection_id in gone:
                        continue
                    per_connection.setdefault(connection_id, []).append(index)
                    if event.close and connection_id not in event.keep_open:
                        closing.add(connection_id)
            gone += self._post(messages, per_connection)
        logger.debug(
            "outbox delivery",
            extra={"events": len(events), "connections": len(roster), "gone": len(gone)},
        )
        if gone:
            self._on_gone(batch.key, gone, roster)
        for connection_id in sorted(closing - set(gone)):
            self._close(connection_id)

    def _current(self, events: list[OutboxEvent], key: SessionKey) -> list[OutboxEvent]:
        """Events whose payload is a subject's state carry its state at delivery; of several
        about one subject in a batch only the last is sent (they would all carry the same)."""
        if self._subjects is None:
            return events
        last = {e.subject: i for i, e in enumerate(events) if e.subject}
        current: list[OutboxEvent] = []
        for i, event in enumerate(events):
            if not event.subject:
                current.append(event)
            elif last[event.subject] == i:
                state = self._subjects.current(key, event.subject)
                current.append(replace(event, payload=state) if state is not None else event)
        return current

    def _post(self, messages: list[str], per_connection: dict[str, list[int]]) -> list[str]:
        ids = sorted(per_connection)
        if self._slices is None or len(ids) <= self._slice_connections:
            return self._poster.post_sequences(
                [(c, [messages[i] for i in per_connection[c]]) for c in ids]
            )
        size = max(self._slice_connections, -(-len(ids) // MAX_SLICES))
        chunks = [ids[start : start + size] for start in range(0, len(ids), size)]
        slices = self._slices

        def remote(chunk: list[str]) -> list[str]:
            return slices.post_slice(messages, [(c, per_connection[c]) for c in chunk])

        def local(chunk: list[str]) -> list[str]:
            return self._poster.post_sequences(
                [(c, [messages[i] for i in per_connection[c]]) for c in chunk]
            )

        # The first slice is posted here while the others run in their own invocations.
        with ThreadPoolExecutor(len(chunks), thread_name_prefix="outbox-slice") as pool:
            futures = [pool.submit(local, chunks[0])]
            futures += [pool.submit(remote, chunk) for chunk in chunks[1:]]
            return [c for future in futures for c in future.result()]


def _parts(
    encoded: list[tuple[OutboxEvent, str]],
) -> list[list[tuple[OutboxEvent, str]]]:
    """The batch's events in order, in parts whose messages fit one slice invocation's payload
    (a message is at most 128 KiB, so every part holds at least one); parts go out in turn."""
    parts: list[list[tuple[OutboxEvent, str]]] = [[]]
    size = 0
    for item in encoded:
        length = len(item[1].encode())
        if parts[-1] and size + length > MAX_SLICE_PAYLOAD_BYTES:
            parts.append([])
            size = 0
        parts[-1].append(item)
        size += length
    return parts


def _targets(event: OutboxEvent, roster: list[Recipient]) -> list[str]:
    audience = event.audience
    targets = [
        p.connection_id
        for p in roster
        if p.connection_id and audience.matches(p.participant_id, p.status, p.role, p.room)
    ]
    targets.extend(c for c in audience.connections if c not in targets)
    return targets


def _by_session(records: list[StreamRecord]) -> list[SessionBatch]:
    """Records grouped by session in order of first appearance, each group in commit order."""
    groups: dict[tuple[str, str], SessionBatch] = {}
    ordered: list[SessionBatch] = []
    for record in records:
        if record.event is None:
            raise PoisonedRecord(f"record {record.sequence_number} cannot be delivered")
        key = (record.event.meeting_id, record.event.session_id)
        if key not in groups:
            groups[key] = SessionBatch(SessionKey(*key))
            ordered.append(groups[key])
        groups[key].records.append(record)
    return ordered


def slice_request(messages: list[str], deliveries: list[tuple[str, list[int]]]) -> str:
    """The slice function's event, as JSON."""
    return json.dumps({"messages": messages, "deliveries": deliveries}, separators=(",", ":"))


def read_slice_request(event: Mapping[str, Any]) -> tuple[list[str], list[tuple[str, list[int]]]]:
    """Validate a slice event: bounded lists of strings and in-range indexes."""
    messages = event.get("messages")
    deliveries = event.get("deliveries")
    if not isinstance(messages, list) or not isinstance(deliveries, list):
        raise ValueError("a slice needs messages and deliveries lists")
    if len(messages) > MAX_RECORDS or len(deliveries) > SLICE_CONNECTIONS * MAX_SLICES:
        raise ValueError("a slice too large")
    if not all(isinstance(m, str) for m in messages):
        raise ValueError("messages must be strings")
    checked: list[tuple[str, list[int]]] = []
    for delivery in deliveries:
        if not (isinstance(delivery, list) and len(delivery) == 2):
            raise ValueError("a delivery is [connection_id, [indexes]]")
        connection_id, indexes = delivery
        if not isinstance(connection_id, str) or not isinstance(indexes, list):
            raise ValueError("a delivery is [connection_id, [indexes]]")
        if not all(isinstance(i, int) and 0 <= i < len(messages) for i in indexes):
            raise ValueError("a delivery names a message that is not there")
        checked.append((connection_id, indexes))
    return messages, checked
