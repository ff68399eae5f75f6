"""Meetings, their participants and their chat in the Meetings table.

One partition per meeting, `pk = M#{meeting_id}`, with these sort keys:
- `META`: the meeting (schedule, passcode, flags) and `seq`, the meeting's event counter.
  The `by_host` index (host_id, start_utc) lists a host's meetings.
- `P#{participant_id}`: one participant: name, role, status, media flags, the live
  `connection_id`, `place` (order of first admission) and `rev` (the seq of its last change,
  used for optimistic concurrency: every write is conditional on the rev it read).
- `C#{seq:012d}`: a chat message, kept for late joiners and the summary.
- `R#{participant_id}#{request_id}`: a request id already served, with a 10 minute TTL; written
  in the same transaction as the change it made, so a replay changes nothing.
- Polls, Q&A, whiteboard strokes and attendance sessions have their own item types (see
  store.polls, store.questions, store.whiteboard and store.attendance).

Sharding for very large events (see docs/data-model.md): participant and request items move to
`M#{meeting_id}#{shard}` partitions keyed by a hash of the participant id, while META stays put.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from botocore.exceptions import ClientError

from townhall.auth.claims import Role
from townhall.meetings.schedule import Schedule
from townhall.store import dynamo

Status = Literal["joining", "waiting", "admitted", "denied", "removed"]
REQUEST_TTL_SECONDS = 600
_RUNNING = "attribute_exists(pk) AND attribute_not_exists(ended_at)"
MAX_TRANSACTION_ITEMS = 100


def meeting_pk(meeting_id: str) -> str:
    return f"M#{meeting_id}"


@dataclass
class Meeting:
    meeting_id: str
    host_id: str
    title: str
    kind: Literal["meeting", "webinar"]
    schedule: Schedule
    passcode: str | None
    waiting_room: bool
    created_at: int
    updated_at: int
    locked: bool = False
    ended_at: int | None = None
    video_slots: int = 9
    seq: int = 0

    def to_item(self) -> dict[str, Any]:
        return {
            "pk": meeting_pk(self.meeting_id),
            "sk": "META",
            "meeting_id": self.meeting_id,
            "host_id": self.host_id,
            "title": self.title,
            "kind": self.kind,
            "start_local": self.schedule.start_local.isoformat(timespec="minutes"),
            "start_utc": self.schedule.start_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "timezone": self.schedule.timezone,
            "duration_minutes": self.schedule.duration_minutes,
            "rrule": self.schedule.rrule,
            "passcode": self.passcode,
            "waiting_room": self.waiting_room,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "locked": self.locked,
            "ended_at": self.ended_at,
            "video_slots": self.video_slots,
            "seq": self.seq,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Meeting:
        from datetime import datetime

        schedule = Schedule(
            start_local=datetime.fromisoformat(item["start_local"]),
            timezone=item["timezone"],
            duration_minutes=int(item["duration_minutes"]),
            rrule=item.get("rrule"),
        )
        return cls(
            meeting_id=item["meeting_id"],
            host_id=item["host_id"],
            title=item["title"],
            kind=item.get("kind", "meeting"),
            schedule=schedule,
            passcode=item.get("passcode"),
            waiting_room=bool(item.get("waiting_room", False)),
            created_at=int(item["created_at"]),
            updated_at=int(item["updated_at"]),
            locked=bool(item.get("locked", False)),
            ended_at=int(item["ended_at"]) if item.get("ended_at") else None,
            video_slots=int(item.get("video_slots", 9)),
            seq=int(item.get("seq", 0)),
        )


@dataclass
class Participant:
    meeting_id: str
    participant_id: str
    name: str
    role: Role
    status: Status
    user_id: str | None = None
    connection_id: str | None = None
    muted: bool = True
    camera: bool = False
    hand_raised_at: int = 0
    screen: bool = False
    place: int = 0
    joined_at: int = 0
    left_at: int = 0
    # Start (ms) of the attendance session in progress; 0 when none (see store.attendance).
    session_at: int = 0
    rev: int = 0
    resume_hash: str | None = None
    created_at: int = field(default_factory=lambda: int(time.time()))

    @property
    def connected(self) -> bool:
        return self.connection_id is not None

    def public(self) -> dict[str, Any]:
        """What other participants may see."""
        return {
            "participant_id": self.participant_id,
            "name": self.name,
            "role": self.role,
            "status": self.status,
            "connected": self.connected,
            "muted": self.muted,
            "camera": self.camera,
            "hand": self.hand_raised_at > 0,
            "hand_raised_at": self.hand_raised_at,
            "screen": self.screen,
            "place": self.place,
            "rev": self.rev,
        }

    def changed(self, changes: dict[str, Any], seq: int) -> Participant:
        """This participant once `changes` are committed by the action numbered `seq`."""
        return replace(self, **changes, rev=seq)

    def to_item(self) -> dict[str, Any]:
        item = asdict(self)
        item["pk"] = meeting_pk(self.meeting_id)
        item["sk"] = f"P#{self.participant_id}"
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Participant:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in item.items() if k in names})


@dataclass(frozen=True)
class Recipient:
    """The few fields a fan-out needs about a participant (a projected read)."""

    participant_id: str
    status: Status
    role: Role
    connection_id: str | None


class DuplicateRequest(Exception):
    """The request id was already served for this participant."""


class StaleWrite(Exception):
    """Another change landed between our read and our write, or the meeting ended: re-read.

    `failed` names the sort keys whose condition failed, so an action can tell "you already
    voted" from "the meeting ended" without another read."""

    def __init__(self, message: str, failed: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.failed = failed


@dataclass
class ParticipantChange:
    before: Participant
    # New values; None removes the attribute. The write is conditional on `before.rev`.
    changes: dict[str, Any]
    remove: tuple[str, ...] = ()


class MeetingStore:
    def __init__(self, table: str) -> None:
        self._table = table

    @property
    def table(self) -> str:
        return self._table

    # -- meetings ------------------------------------------------------------------------

    def create_meeting(self, meeting: Meeting) -> None:
        dynamo.client().put_item(
            TableName=self._table,
            Item=dynamo.to_ddb(meeting.to_item()),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def get_meeting(self, meeting_id: str) -> Meeting | None:
        raw = (
            dynamo.client()
            .get_item(
                TableName=self._table,
                Key=dynamo.to_ddb({"pk": meeting_pk(meeting_id), "sk": "META"}),
                ConsistentRead=True,
            )
            .get("Item")
        )
        return Meeting.from_item(dynamo.from_ddb(raw)) if raw else None

    def save_meeting(self, meeting: Meeting, expected_updated_at: int) -> bool:
        """Replace the meeting's editable fields if nobody else changed it since it was read."""
        item = meeting.to_item()
        item.pop("seq")  # the counter belongs to signaling, never overwritten by scheduling
        names = {f"#{k}": k for k in item if k not in ("pk", "sk")}
        sets = [f"#{k} = :{k}" for k in item if k not in ("pk", "sk") and item[k] is not None]
        removes = [f"#{k}" for k in item if k not in ("pk", "sk") and item[k] is None]
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        values = {
            f":{k}": dynamo.value(v)
            for k, v in item.items()
            if k not in ("pk", "sk") and v is not None
        }
        values[":expected"] = dynamo.value(expected_updated_at)
        try:
            dynamo.client().update_item(
                TableName=self._table,
                Key=dynamo.to_ddb({"pk": item["pk"], "sk": "META"}),
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(pk) AND updated_at = :expected",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return False
            raise
        return True

    def delete_meeting(self, meeting_id: str) -> None:
        dynamo.client().delete_item(
            TableName=self._table,
            Key=dynamo.to_ddb({"pk": meeting_pk(meeting_id), "sk": "META"}),
        )

    def meetings_of_host(self, host_id: str) -> list[Meeting]:
        items = dynamo.query_all(
            self._table,
            "host_id = :h",
            {":h": host_id},
            index="by_host",
        )
        return [Meeting.from_item(item) for item in items]

    def next_seq(self, meeting_id: str) -> int:
        """Take the meeting's next event number; fails with StaleWrite once the meeting ended."""
        try:
            result = dynamo.client().update_item(
                TableName=self._table,
                Key=dynamo.to_ddb({"pk": meeting_pk(meeting_id), "sk": "META"}),
                UpdateExpression="ADD seq :one",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(ended_at)",
                ExpressionAttributeValues={":one": dynamo.value(1)},
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                raise StaleWrite("meeting has ended or does not exist") from exc
            raise
        return int(dynamo.from_ddb(result["Attributes"])["seq"])

    # -- participants --------------------------------------------------------------------

    def get_participant(self, meeting_id: str, participant_id: str) -> Participant | None:
        raw = (
            dynamo.client()
            .get_item(
                TableName=self._table,
                Key=dynamo.to_ddb({"pk": meeting_pk(meeting_id), "sk": f"P#{participant_id}"}),
                ConsistentRead=True,
            )
            .get("Item")
        )
        return Participant.from_item(dynamo.from_ddb(raw)) if raw else None

    def participants(self, meeting_id: str) -> list[Participant]:
        # Strongly consistent: a fan-out must not miss a participant who just connected.
        items = dynamo.query_all(
            self._table,
            "pk = :pk AND begins_with(sk, :p)",
            {":pk": meeting_pk(meeting_id), ":p": "P#"},
            consistent=True,
        )
        return [Participant.from_item(item) for item in items]

    def recipients(self, meeting_id: str) -> list[Recipient]:
        """Who an event can reach: projected to four attributes, because a fan-out reads the
        whole roster on every action and the rest of each item is dead weight."""
        items = dynamo.query_all(
            self._table,
            "pk = :pk AND begins_with(sk, :p)",
            {":pk": meeting_pk(meeting_id), ":p": "P#"},
            consistent=True,
            projection="participant_id, connection_id, #status, #role",
            names={"#status": "status", "#role": "role"},
        )
        return [
            Recipient(
                participant_id=item["participant_id"],
                status=item["status"],
                role=item["role"],
                connection_id=item.get("connection_id"),
            )
            for item in items
        ]

    def create_participant(self, participant: Participant) -> bool:
        try:
            dynamo.client().put_item(
                TableName=self._table,
                Item=dynamo.to_ddb(participant.to_item()),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return False
            raise
        return True

    def set_resume_hash(self, meeting_id: str, participant_id: str, resume_hash: str) -> None:
        dynamo.client().update_item(
            TableName=self._table,
            Key=dynamo.to_ddb({"pk": meeting_pk(meeting_id), "sk": f"P#{participant_id}"}),
            UpdateExpression="SET resume_hash = :h",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":h": dynamo.value(resume_hash)},
        )

    def load(
        self, meeting_id: str, participant_id: str, request_id: str | None = None
    ) -> tuple[Meeting | None, Participant | None, bool]:
        """The meeting, one participant, and whether a request id was served: one round trip
        (BatchGetItem, strongly consistent) instead of three on every action's hot path."""
        pk = meeting_pk(meeting_id)
        keys = [{"pk": pk, "sk": "META"}, {"pk": pk, "sk": f"P#{participant_id}"}]
        if request_id is not None:
            keys.append({"pk": pk, "sk": f"R#{participant_id}#{request_id}"})
        request: dict[str, Any] = {
            self._table: {"Keys": [dynamo.to_ddb(k) for k in keys], "ConsistentRead": True}
        }
        found: dict[str, dict[str, Any]] = {}
        for _ in range(5):  # unprocessed keys come back under throttling: bounded retry
            result = dynamo.client().batch_get_item(RequestItems=request)
            for raw in result.get("Responses", {}).get(self._table, []):
                item = dynamo.from_ddb(raw)
                found[item["sk"]] = item
            request = result.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(0.01)
        else:
            raise RuntimeError("DynamoDB kept keys unprocessed; retry the request")
        meta = found.get("META")
        participant = found.get(f"P#{participant_id}")
        seen = request_id is not None and dynamo.is_live(
            found.get(f"R#{participant_id}#{request_id}") or {"ttl": 0}
        )
        return (
            Meeting.from_item(meta) if meta else None,
            Participant.from_item(participant) if participant else None,
            seen,
        )

    # -- the one write path of signaling ----------------------------------------------------

    def commit(
        self,
        meeting_id: str,
        seq: int,
        *,
        request: tuple[str, str] | None = None,
        participants: Sequence[ParticipantChange] = (),
        meeting_changes: Mapping[str, Any] | None = None,
        puts: Sequence[dict[str, Any]] = (),
        extra: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Write one action's whole effect atomically, or nothing.

        `extra` holds ready-made transaction items (conditional puts and updates built by the
        collaboration stores). Raises DuplicateRequest if `request` (participant id, request
        id) was served already, and StaleWrite if a participant changed since it was read, a
        condition of `extra` failed, or the meeting ended.
        """
        pk = meeting_pk(meeting_id)
        now = int(time.time())
        items: list[dict[str, Any]] = []
        if request is not None:
            pid, rid = request
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": dynamo.to_ddb(
                            {
                                "pk": pk,
                                "sk": f"R#{pid}#{rid}",
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
            )
        for change in participants:
            items.append({"Update": self._participant_update(change, seq)})
        if meeting_changes is not None:
            sets = [f"#{k} = :{k}" for k in meeting_changes]
            items.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": dynamo.to_ddb({"pk": pk, "sk": "META"}),
                        "UpdateExpression": "SET " + ", ".join(sets),
                        "ConditionExpression": _RUNNING,
                        "ExpressionAttributeNames": {f"#{k}": k for k in meeting_changes},
                        "ExpressionAttributeValues": {
                            f":{k}": dynamo.value(v) for k, v in meeting_changes.items()
                        },
                    }
                }
            )
        else:
            # Every action is conditional on the meeting still running.
            items.append(
                {
                    "ConditionCheck": {
                        "TableName": self._table,
                        "Key": dynamo.to_ddb({"pk": pk, "sk": "META"}),
                        "ConditionExpression": _RUNNING,
                    }
                }
            )
        for put in puts:
            items.append({"Put": {"TableName": self._table, "Item": dynamo.to_ddb(put)}})
        items.extend(extra)
        if len(items) > MAX_TRANSACTION_ITEMS:
            raise ValueError(f"one action may change at most {MAX_TRANSACTION_ITEMS} items")
        try:
            dynamo.client().transact_write_items(TransactItems=items)
        except ClientError as exc:
            reasons = dynamo.cancellation_reasons(exc)
            if not reasons:
                raise
            if request is not None and reasons[0] == "ConditionalCheckFailed":
                raise DuplicateRequest(request[1]) from exc
            if "ConditionalCheckFailed" in reasons or "TransactionConflict" in reasons:
                failed = tuple(
                    _sort_key(item)
                    for item, reason in zip(items, reasons, strict=False)
                    if reason == "ConditionalCheckFailed"
                )
                raise StaleWrite("state changed while the action ran", failed) from exc
            raise

    def _participant_update(self, change: ParticipantChange, seq: int) -> dict[str, Any]:
        before = change.before
        changes = {**change.changes, "rev": seq}
        sets = [f"#{k} = :{k}" for k, v in changes.items() if v is not None]
        removes = [f"#{k}" for k, v in changes.items() if v is None]
        removes += [f"#{k}" for k in change.remove]
        names = {f"#{k}": k for k in [*changes, *change.remove]}
        values = {f":{k}": dynamo.value(v) for k, v in changes.items() if v is not None}
        values[":rev_before"] = dynamo.value(before.rev)
        expression = "SET " + ", ".join(sets)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        names["#rev_c"] = "rev"
        return {
            "TableName": self._table,
            "Key": dynamo.to_ddb(
                {"pk": meeting_pk(before.meeting_id), "sk": f"P#{before.participant_id}"}
            ),
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(pk) AND #rev_c = :rev_before",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }


def _sort_key(transact_item: dict[str, Any]) -> str:
    body = next(iter(transact_item.values()))
    key = body.get("Key") or body.get("Item") or {}
    return str(key.get("sk", {}).get("S", ""))
