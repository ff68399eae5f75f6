"""Participants in a session's partition: `P#{participant_id}`.

One item per person and session: name, role, status, media flags, the live `connection_id`,
`place` (order of first admission), the attendance interval in progress (`session_at`), the
resume token's hashes, and `rev`, the `seq` of its last change. Every change is conditional
on the `rev` it read (optimistic concurrency); `store.sessions.SessionStore.commit` writes
them.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Protocol

from botocore.exceptions import ClientError

from townhall.model.participant import Participant, Recipient
from townhall.model.session import SessionKey
from townhall.store import dynamo
from townhall.store.keys import session_pk

PARTICIPANT_PREFIX = "P#"
_FIELDS = frozenset(f.name for f in fields(Participant))


def participant_sk(participant_id: str) -> str:
    return f"{PARTICIPANT_PREFIX}{participant_id}"


def participant_item(p: Participant) -> dict[str, Any]:
    item = asdict(p)
    item["pk"] = session_pk(SessionKey(p.meeting_id, p.session_id))
    item["sk"] = participant_sk(p.participant_id)
    return item


def participant_from_item(item: dict[str, Any]) -> Participant:
    return Participant(**{k: v for k, v in item.items() if k in _FIELDS})


class ParticipantRecords(Protocol):
    """The participants as the services use them (ParticipantStore is the DynamoDB one)."""

    def get(self, session: SessionKey, participant_id: str) -> Participant | None: ...

    def all(self, session: SessionKey) -> list[Participant]: ...

    def recipients(self, session: SessionKey) -> list[Recipient]: ...

    def create(self, participant: Participant) -> bool: ...

    def set_resume(
        self, session: SessionKey, participant_id: str, current: str, previous: str | None
    ) -> None: ...


@dynamo.store_boundary
class ParticipantStore:
    def __init__(self, table: str) -> None:
        self._table = table

    def get(self, session: SessionKey, participant_id: str) -> Participant | None:
        item = dynamo.get(
            self._table, {"pk": session_pk(session), "sk": participant_sk(participant_id)}
        )
        return participant_from_item(item) if item else None

    def all(self, session: SessionKey) -> list[Participant]:
        # Strongly consistent: a fan-out must not miss a participant who just connected.
        items = dynamo.query_all(
            self._table,
            "pk = :pk AND begins_with(sk, :p)",
            {":pk": session_pk(session), ":p": PARTICIPANT_PREFIX},
            consistent=True,
        )
        return [participant_from_item(item) for item in items]

    def recipients(self, session: SessionKey) -> list[Recipient]:
        """Who an event can reach: projected to five attributes, because a fan-out reads the
        whole roster on every action and the rest of each item is dead weight."""
        items = dynamo.query_all(
            self._table,
            "pk = :pk AND begins_with(sk, :p)",
            {":pk": session_pk(session), ":p": PARTICIPANT_PREFIX},
            consistent=True,
            projection="participant_id, connection_id, #status, #role, #room",
            names={"#status": "status", "#role": "role", "#room": "room"},
        )
        return [
            Recipient(
                participant_id=item["participant_id"],
                status=item["status"],
                role=item["role"],
                connection_id=item.get("connection_id"),
                room=str(item.get("room", "")),
            )
            for item in items
        ]

    def create(self, participant: Participant) -> bool:
        """Write a new participant; False if one with that id is already in the session."""
        try:
            dynamo.client().put_item(
                TableName=self._table,
                Item=dynamo.to_ddb(participant_item(participant)),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return False
            raise
        return True

    def set_resume(
        self, session: SessionKey, participant_id: str, current: str, previous: str | None
    ) -> None:
        """Store the resume token's hash, and the one it replaces (still accepted once more,
        so a `/rejoin` whose answer was lost can be sent again)."""
        names = {"#h": "resume_hash", "#p": "resume_previous_hash"}
        values = {":h": dynamo.value(current)}
        if previous is None:
            expression = "SET #h = :h REMOVE #p"
        else:
            expression = "SET #h = :h, #p = :p"
            values[":p"] = dynamo.value(previous)
        dynamo.client().update_item(
            TableName=self._table,
            Key=dynamo.to_ddb({"pk": session_pk(session), "sk": participant_sk(participant_id)}),
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
