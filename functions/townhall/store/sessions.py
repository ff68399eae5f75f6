"""Sessions in the Meetings table, and the one write path of everything that happens in one.

In the session's partition (`store.keys.session_pk`):
- `META`: the session's state: when and by whom it started, the meeting's settings as they
  were then (title, kind, host, waiting room, video slots), `locked`, `ended_at` (absent
  while it runs) and `seq`, its event counter.
- `R#{participant_id}#{request_id}`: a request id already served, with a 10 minute TTL,
  written in the same transaction as the change it made, so a replay changes nothing.
- participants (`store.participants`), chat, polls, questions, strokes and attendance (their
  own stores).

In the meeting's partition, one index row per session, `SESSION#{started_at:013d}#{id}`
(started_at, started_by, ended_at), so a meeting's sessions list newest first, a page at a
time. Starting a session writes its `META`, its index row and the meeting's
`live_session_id` in one transaction, conditional on no session running; ending it clears
them in one transaction too, so "the session running now" is never ambiguous.

Everything an action changes is one typed write (`store.writes`): `SessionStore.commit` turns
its operations into one DynamoDB transaction with the request record, and a failed condition
back into the error the operation names.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError

from contracts.signaling_events import EventName
from townhall import clock
from townhall.errors import InvalidInput
from townhall.model.event import Audience, OutboxEvent
from townhall.model.meeting import Meeting
from townhall.model.participant import Participant
from townhall.model.session import Session, SessionKey
from townhall.store import (
    attendance,
    breakouts,
    chat,
    dynamo,
    outbox,
    polls,
    questions,
    whiteboard,
)
from townhall.store.keys import meeting_pk, session_pk
from townhall.store.meetings import META_SK, SESSION_INDEX_PREFIX, meeting_key
from townhall.store.participants import participant_from_item, participant_sk
from townhall.store.writes import (
    AddChatMessage,
    AddStroke,
    AnswerQuestion,
    AskQuestion,
    CastVote,
    ClearWhiteboard,
    CloseAttendance,
    ClosePoll,
    CreatePoll,
    DismissQuestion,
    DuplicateRequest,
    EndSession,
    EnterRoom,
    LockSession,
    OpenAttendance,
    Operation,
    ParticipantChange,
    PublishEvent,
    SessionEnded,
    SetBreakouts,
    StaleWrite,
    TransactionConflict,
    UpvoteQuestion,
)

REQUEST_TTL_SECONDS = 600
MAX_TRANSACTION_ITEMS = 100
INDEX_PREFIX = SESSION_INDEX_PREFIX
_INDEX_SK = re.compile(r"SESSION#\d{13}#[A-Za-z0-9_-]{1,64}")
_RUNNING = "attribute_exists(pk) AND attribute_not_exists(ended_at)"
MAX_PAGE = 50


class SessionAlreadyLive(Exception):
    """Another session of the meeting started first (or is still running)."""


@dataclass(frozen=True)
class SessionRow:
    """A session as the meeting's index lists it."""

    session_id: str
    started_at: int
    started_by: str
    ended_at: int


class SessionRecords(Protocol):
    """Sessions as scheduling and joining use them: start, end, find, list (SessionStore is
    the DynamoDB one)."""

    # The Meetings table, for a service that builds its participant store from it when none
    # is passed in (meetings/service.py does); signaling gets every store injected instead.
    @property
    def table(self) -> str: ...

    def start(self, meeting: Meeting, session_id: str, started_by: str) -> Session: ...

    def end(self, session: Session, ended_at: int) -> bool: ...

    def get(self, key: SessionKey) -> Session | None: ...

    def past(
        self, meeting_id: str, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[SessionRow], str | None]: ...


class RunningSessionRecords(Protocol):
    """A running session as signaling uses it: read it, take its next event number, commit
    an action's typed write (SessionStore is the DynamoDB one)."""

    def get(self, key: SessionKey) -> Session | None: ...

    def load(
        self, key: SessionKey, participant_id: str, request_id: str | None = None
    ) -> tuple[Session | None, Participant | None, bool]:
        """The session, one participant, and whether the participant's request id was
        served already."""
        ...

    def next_seq(self, key: SessionKey) -> int:
        """Take the session's next event number; SessionEnded once it has ended."""
        ...

    def commit(
        self,
        key: SessionKey,
        seq: int,
        write: Sequence[Operation],
        *,
        request: tuple[str, str] | None = None,
    ) -> None:
        """Apply every operation of `write` atomically, or none, with `request` (participant
        id, request id) recorded as served. Raises what `store.writes` describes."""
        ...


def index_sk(started_at: int, session_id: str) -> str:
    return f"{INDEX_PREFIX}{started_at:013d}#{session_id}"


def session_item(session: Session) -> dict[str, Any]:
    item = {
        "pk": session_pk(session.key),
        "sk": META_SK,
        "meeting_id": session.meeting_id,
        "session_id": session.session_id,
        "started_at": session.started_at,
        "started_by": session.started_by,
        "title": session.title,
        "kind": session.kind,
        "host_id": session.host_id,
        "waiting_room": session.waiting_room,
        "video_slots": session.video_slots,
        "locked": session.locked,
        "seq": session.seq,
    }
    if session.ended_at:
        item["ended_at"] = session.ended_at
    return item


def session_from_item(item: Mapping[str, Any]) -> Session:
    return Session(
        meeting_id=item["meeting_id"],
        session_id=item["session_id"],
        started_at=int(item["started_at"]),
        started_by=item["started_by"],
        title=item["title"],
        kind=item.get("kind", "meeting"),
        host_id=item["host_id"],
        waiting_room=bool(item.get("waiting_room", False)),
        video_slots=int(item.get("video_slots", 9)),
        locked=bool(item.get("locked", False)),
        ended_at=int(item.get("ended_at", 0)),
        seq=int(item.get("seq", 0)),
    )


@dynamo.store_boundary
class SessionStore:
    def __init__(self, table: str) -> None:
        self._table = table

    @property
    def table(self) -> str:
        return self._table

    # -- starting, ending, listing -----------------------------------------------------------

    def start(self, meeting: Meeting, session_id: str, started_by: str) -> Session:
        """Start a session of `meeting`, or raise SessionAlreadyLive if one runs."""
        now = clock.now_ms()
        session = Session(
            meeting_id=meeting.meeting_id,
            session_id=session_id,
            started_at=now,
            started_by=started_by,
            title=meeting.title,
            kind=meeting.kind,
            host_id=meeting.host_id,
            waiting_room=meeting.waiting_room,
            video_slots=meeting.video_slots,
        )
        row = {
            "pk": meeting_pk(meeting.meeting_id),
            "sk": index_sk(now, session_id),
            "session_id": session_id,
            "started_at": now,
            "started_by": started_by,
        }
        items = [
            dynamo.put_new(self._table, session_item(session)),
            dynamo.put_new(self._table, row),
            dynamo.update(
                self._table,
                meeting_key(meeting.meeting_id),
                "SET live_session_id = :sid, last_session_at = :now",
                {":sid": session_id, ":now": now},
                condition="attribute_exists(pk) AND attribute_not_exists(live_session_id)",
            ),
            # The start, for the outbox's other consumers (webhooks): seq 0, before any
            # action's event, and to no connection (nobody is connected yet).
            *(
                t.request
                for t in outbox.publish(
                    self._table,
                    session.key,
                    OutboxEvent(
                        meeting.meeting_id,
                        session_id,
                        0,
                        EventName.SESSION_STARTED.value,
                        {"started_by": started_by},
                        Audience(only=frozenset()),
                        at=now,
                    ),
                )
            ),
        ]
        try:
            dynamo.client().transact_write_items(TransactItems=items)
        except ClientError as exc:
            if "ConditionalCheckFailed" in dynamo.cancellation_reasons(exc):
                raise SessionAlreadyLive(meeting.meeting_id) from exc
            raise
        return session

    def _end_items(self, session: Session, ended_at: int) -> list[dict[str, Any]]:
        """What ending a session writes besides its own `META`: the index row, and the
        meeting no longer pointing at it."""
        return [
            dynamo.update(
                self._table,
                {
                    "pk": meeting_pk(session.meeting_id),
                    "sk": index_sk(session.started_at, session.session_id),
                },
                "SET ended_at = :at",
                {":at": ended_at},
                condition="attribute_exists(pk)",
            ),
            dynamo.update(
                self._table,
                meeting_key(session.meeting_id),
                "REMOVE live_session_id",
                {":sid": session.session_id},
                condition="live_session_id = :sid",
            ),
        ]

    def end(self, session: Session, ended_at: int) -> bool:
        """End a session outside any action (one found abandoned); False if it had ended."""
        items = [
            dynamo.update(
                self._table,
                {"pk": session_pk(session.key), "sk": META_SK},
                "SET ended_at = :at",
                {":at": ended_at},
                condition=_RUNNING,
            ),
            *self._end_items(session, ended_at),
        ]
        try:
            dynamo.client().transact_write_items(TransactItems=items)
        except ClientError as exc:
            if "ConditionalCheckFailed" in dynamo.cancellation_reasons(exc):
                return False
            raise
        return True

    def get(self, key: SessionKey) -> Session | None:
        item = dynamo.get(self._table, {"pk": session_pk(key), "sk": META_SK})
        return session_from_item(item) if item else None

    def past(
        self, meeting_id: str, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[SessionRow], str | None]:
        """The meeting's sessions, newest first, a page of at most `limit`; and the cursor of
        the next page (None on the last)."""
        limit = max(1, min(limit, MAX_PAGE))
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :s)",
            "ExpressionAttributeValues": {
                ":pk": dynamo.value(meeting_pk(meeting_id)),
                ":s": dynamo.value(INDEX_PREFIX),
            },
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor is not None:
            request["ExclusiveStartKey"] = dynamo.to_ddb(
                {"pk": meeting_pk(meeting_id), "sk": _decode_cursor(cursor)}
            )
        page = dynamo.client().query(**request)
        rows = [
            SessionRow(
                session_id=item["session_id"],
                started_at=int(item["started_at"]),
                started_by=item.get("started_by", ""),
                ended_at=int(item.get("ended_at", 0)),
            )
            for item in (dynamo.from_ddb(raw) for raw in page.get("Items", []))
        ]
        last = page.get("LastEvaluatedKey")
        next_cursor = _encode_cursor(dynamo.from_ddb(last)["sk"]) if last else None
        return rows, next_cursor

    # -- the running session -----------------------------------------------------------------

    def next_seq(self, key: SessionKey) -> int:
        """Take the session's next event number; SessionEnded once the session has ended."""
        try:
            result = dynamo.client().update_item(
                TableName=self._table,
                Key=dynamo.to_ddb({"pk": session_pk(key), "sk": META_SK}),
                UpdateExpression="ADD seq :one",
                ConditionExpression=_RUNNING,
                ExpressionAttributeValues={":one": dynamo.value(1)},
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                raise SessionEnded() from exc
            raise
        return int(dynamo.from_ddb(result["Attributes"])["seq"])

    def load(
        self, key: SessionKey, participant_id: str, request_id: str | None = None
    ) -> tuple[Session | None, Participant | None, bool]:
        """The session, one participant, and whether a request id was served: one round trip
        (BatchGetItem, strongly consistent) instead of three on every action's hot path."""
        pk = session_pk(key)
        keys = [{"pk": pk, "sk": META_SK}, {"pk": pk, "sk": participant_sk(participant_id)}]
        if request_id is not None:
            keys.append({"pk": pk, "sk": _request_sk(participant_id, request_id)})
        found = {item["sk"]: item for item in dynamo.batch_get(self._table, keys)}
        meta = found.get(META_SK)
        participant = found.get(participant_sk(participant_id))
        seen = request_id is not None and dynamo.is_live(
            found.get(_request_sk(participant_id, request_id)) or {"ttl": 0}
        )
        return (
            session_from_item(meta) if meta else None,
            participant_from_item(participant) if participant else None,
            seen,
        )

    def commit(
        self,
        key: SessionKey,
        seq: int,
        write: Sequence[Operation],
        *,
        request: tuple[str, str] | None = None,
    ) -> None:
        """Write one action's whole effect atomically, or nothing: one TransactWriteItems of
        the request record, the participant changes (each conditional on its `rev`), the
        session's `META` (changed, or checked to be still running) and the items of the other
        operations.

        Raises DuplicateRequest if `request` (participant id, request id) was served already;
        the error an operation names for its failed condition (already voted, a cap...);
        SessionEnded if the session ended; StaleWrite if a participant changed since it was
        read; TransactionConflict if only a concurrent transaction got in the way.
        """
        pk = session_pk(key)
        now = int(clock.now())
        items: list[dynamo.TransactItem] = []
        if request is not None:
            pid, rid = request
            record = {
                "Put": {
                    "TableName": self._table,
                    "Item": dynamo.to_ddb(
                        {
                            "pk": pk,
                            "sk": _request_sk(pid, rid),
                            "seq": seq,
                            "ttl": now + REQUEST_TTL_SECONDS,
                        }
                    ),
                    # An expired item may linger: it no longer blocks a reuse.
                    "ConditionExpression": "attribute_not_exists(pk) OR #ttl < :now",
                    "ExpressionAttributeNames": {"#ttl": "ttl"},
                    "ExpressionAttributeValues": {":now": dynamo.value(now)},
                }
            }
            items.append(dynamo.TransactItem(record))
        for op in write:
            if isinstance(op, ParticipantChange):
                items.append(
                    dynamo.TransactItem({"Update": self._participant_update(key, op, seq)})
                )
        # Every action is conditional on the session still running, and one transaction may
        # name the session's META only once: its change, or else a check.
        session_ops = [op for op in write if isinstance(op, LockSession | EndSession)]
        if len(session_ops) > 1:
            raise ValueError("one write changes the session at most once")
        meta = dynamo.TransactItem(self._meta_item(key, session_ops[0] if session_ops else None))
        items.append(meta)
        for change in session_ops:
            if isinstance(change, EndSession):
                ended = self._end_items(change.session, change.ended_at)
                items.extend(dynamo.TransactItem(i) for i in ended)
        for op in write:
            if not isinstance(op, ParticipantChange | LockSession | EndSession | PublishEvent):
                items.extend(self._items(key, op))
        at = clock.now_ms()
        published = [op for op in write if isinstance(op, PublishEvent)]
        for n, op in enumerate(published):
            event = OutboxEvent(
                meeting_id=key.meeting_id,
                session_id=key.session_id,
                seq=seq,
                type=op.type,
                payload=op.payload,
                audience=op.audience,
                at=at,
                n=n,
                close=op.close,
                keep_open=op.keep_open,
                subject=op.subject,
            )
            items.extend(outbox.publish(self._table, key, event))
        if len(items) > MAX_TRANSACTION_ITEMS:
            raise ValueError(f"one action may change at most {MAX_TRANSACTION_ITEMS} items")
        try:
            dynamo.client().transact_write_items(TransactItems=[i.request for i in items])
        except ClientError as exc:
            reasons = dynamo.cancellation_reasons(exc)
            if not reasons:
                raise
            if request is not None and reasons[0] == "ConditionalCheckFailed":
                raise DuplicateRequest(request[1]) from exc
            failed = [
                item
                for item, reason in zip(items, reasons, strict=False)
                if reason == "ConditionalCheckFailed"
            ]
            # What the action named comes first ("already voted" even if the session ended
            # meanwhile), then the session's end, then a participant that changed.
            for item in failed:
                if item.refusal is not None:
                    raise item.refusal from exc
            if any(item is meta for item in failed):
                raise SessionEnded() from exc
            if failed:
                raise StaleWrite("a participant changed while the action ran") from exc
            if "TransactionConflict" in reasons:
                raise TransactionConflict("another transaction was in flight") from exc
            raise

    def _meta_item(
        self, key: SessionKey, change: LockSession | EndSession | None
    ) -> dict[str, Any]:
        """The session's `META` in a commit: updated by a session change, else checked."""
        meta_key = {"pk": session_pk(key), "sk": META_SK}
        if change is None:
            return {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": dynamo.to_ddb(meta_key),
                    "ConditionExpression": _RUNNING,
                }
            }
        changes: dict[str, Any] = (
            {"locked": change.locked}
            if isinstance(change, LockSession)
            else {"ended_at": change.ended_at}
        )
        return dynamo.update(
            self._table,
            meta_key,
            "SET " + ", ".join(f"#{k} = :{k}" for k in changes),
            {f":{k}": v for k, v in changes.items()},
            condition=_RUNNING,
            names={f"#{k}": k for k in changes},
        )

    def _items(self, key: SessionKey, op: Operation) -> list[dynamo.TransactItem]:
        """The transaction items of one operation kept outside the session's META and its
        participants, each with the error its failed condition means."""
        table = self._table
        match op:
            case AddChatMessage():
                return chat.add_message(table, key, op)
            case SetBreakouts():
                return breakouts.set_breakouts(table, key, op)
            case EnterRoom():
                return breakouts.enter_room(table, key, op)
            case OpenAttendance():
                return attendance.open_attendance(table, key, op)
            case CloseAttendance():
                return attendance.close_attendance(table, key, op)
            case CreatePoll():
                return polls.create_poll(table, key, op)
            case CastVote():
                return polls.cast_vote(table, key, op)
            case ClosePoll():
                return polls.close_poll(table, key, op)
            case AskQuestion():
                return questions.ask_question(table, key, op)
            case UpvoteQuestion():
                return questions.upvote_question(table, key, op)
            case AnswerQuestion():
                return questions.answer_question(table, key, op)
            case DismissQuestion():
                return questions.dismiss_question(table, key, op)
            case AddStroke():
                return whiteboard.add_stroke(table, key, op)
            case ClearWhiteboard():
                return whiteboard.clear_whiteboard(table, key, op)
        raise TypeError(f"{type(op).__name__} is written with the session or a participant")

    def _participant_update(
        self, key: SessionKey, change: ParticipantChange, seq: int
    ) -> dict[str, Any]:
        before = change.before
        changes = {**change.changes, "rev": seq}
        sets = [f"#{k} = :{k}" for k, v in changes.items() if v is not None]
        removes = [f"#{k}" for k, v in changes.items() if v is None]
        names = {f"#{k}": k for k in changes}
        values = {f":{k}": dynamo.value(v) for k, v in changes.items() if v is not None}
        values[":rev_before"] = dynamo.value(before.rev)
        expression = "SET " + ", ".join(sets)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        names["#rev_c"] = "rev"
        return {
            "TableName": self._table,
            "Key": dynamo.to_ddb(
                {"pk": session_pk(key), "sk": participant_sk(before.participant_id)}
            ),
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(pk) AND #rev_c = :rev_before",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }


def _request_sk(participant_id: str, request_id: str) -> str:
    return f"R#{participant_id}#{request_id}"


def _encode_cursor(sk: str) -> str:
    return base64.urlsafe_b64encode(sk.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    """The index row a cursor names; anything else is refused (a cursor is opaque to clients,
    but it reaches a DynamoDB key, so it is checked whole)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        sk = base64.urlsafe_b64decode(padded.encode("ascii")).decode()
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidInput("cursor is not valid") from None
    if len(cursor) > 200 or not _INDEX_SK.fullmatch(sk):
        raise InvalidInput("cursor is not valid")
    return sk
