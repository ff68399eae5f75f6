"""Meetings in the Meetings table: the `META` item of the meeting's partition, `M#{meeting_id}`.

`META` holds the schedule and settings a host edits (title, kind, start, time zone, duration,
RRULE, passcode, waiting room, video slots, allow guests before the host) and the pointer to
the session running now (`live_session_id`, written only by `store.sessions`, in the same
transaction that starts or ends a session). The `by_host` index (host_id, start_utc) lists a
host's meetings. The partition also holds the meeting's session index (`store.sessions`) and
its media placement (`store.placement`); each session has a partition of its own.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Protocol

from botocore.exceptions import ClientError

from townhall.model.meeting import Meeting
from townhall.model.schedule import Schedule
from townhall.model.session import SessionKey
from townhall.store import dynamo
from townhall.store.keys import meeting_pk, session_pk

META_SK = "META"
# The meeting's session index rows (store.sessions.INDEX_PREFIX; this module sits below it).
SESSION_INDEX_PREFIX = "SESSION#"
# Deleting a meeting deletes this many of its items at most in one request (about 800
# BatchWriteItem calls: a few seconds), and never pages further than this.
MAX_DELETED_ITEMS = 20_000
_DELETE_PAGES = 200
# Written by the session store only; a scheduling edit never touches them.
_SESSION_FIELDS = ("live_session_id", "last_session_at")
log = logging.getLogger(__name__)


def meeting_key(meeting_id: str) -> dict[str, str]:
    return {"pk": meeting_pk(meeting_id), "sk": META_SK}


def meeting_item(meeting: Meeting) -> dict[str, Any]:
    return {
        **meeting_key(meeting.meeting_id),
        "meeting_id": meeting.meeting_id,
        "host_id": meeting.host_id,
        "title": meeting.title,
        "kind": meeting.kind,
        "start_local": meeting.schedule.start_local.isoformat(timespec="minutes"),
        "start_utc": meeting.schedule.start_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "timezone": meeting.schedule.timezone,
        "duration_minutes": meeting.schedule.duration_minutes,
        "rrule": meeting.schedule.rrule,
        "passcode": meeting.passcode,
        "waiting_room": meeting.waiting_room,
        "created_at": meeting.created_at,
        "updated_at": meeting.updated_at,
        "video_slots": meeting.video_slots,
        "allow_before_host": meeting.allow_before_host,
        "live_session_id": meeting.live_session_id,
        "last_session_at": meeting.last_session_at,
    }


def meeting_from_item(item: dict[str, Any]) -> Meeting:
    # The schedule as stored, whatever it holds (an item written before validation, or by
    # hand): Schedule.problem names what is wrong, and the meeting is listed, flagged, instead
    # of failing the host's whole list.
    schedule = Schedule(
        start_local=_stored_start(item.get("start_local")),
        timezone=item.get("timezone", ""),
        duration_minutes=_stored_int(item.get("duration_minutes")),
        rrule=item.get("rrule"),
    )
    return Meeting(
        meeting_id=item["meeting_id"],
        host_id=item["host_id"],
        title=item["title"],
        kind=item.get("kind", "meeting"),
        schedule=schedule,
        passcode=item.get("passcode"),
        waiting_room=bool(item.get("waiting_room", False)),
        created_at=int(item["created_at"]),
        updated_at=int(item["updated_at"]),
        video_slots=int(item.get("video_slots", 9)),
        allow_before_host=bool(item.get("allow_before_host", False)),
        live_session_id=item.get("live_session_id") or None,
        last_session_at=int(item.get("last_session_at", 0)),
    )


def _stored_start(value: Any) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return datetime(1, 1, 1)  # outside Schedule's years: reported as its problem


def _stored_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return 0  # outside Schedule's range: reported as its problem


class MeetingRecords(Protocol):
    """The meetings as the services use them (MeetingStore is the DynamoDB one)."""

    @property
    def table(self) -> str: ...

    def create_meeting(self, meeting: Meeting) -> None: ...

    def get_meeting(self, meeting_id: str) -> Meeting | None: ...

    def save_meeting(self, meeting: Meeting, expected_updated_at: int) -> bool: ...

    def delete_meeting(self, meeting_id: str) -> int: ...

    def meetings_of_host(self, host_id: str) -> list[Meeting]: ...


@dynamo.store_boundary
class MeetingStore:
    def __init__(self, table: str) -> None:
        self._table = table

    @property
    def table(self) -> str:
        return self._table

    def create_meeting(self, meeting: Meeting) -> None:
        dynamo.client().put_item(
            TableName=self._table,
            Item=dynamo.to_ddb(meeting_item(meeting)),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def get_meeting(self, meeting_id: str) -> Meeting | None:
        item = dynamo.get(self._table, meeting_key(meeting_id))
        return meeting_from_item(item) if item else None

    def save_meeting(self, meeting: Meeting, expected_updated_at: int) -> bool:
        """Replace the meeting's editable fields if nobody else changed it since it was read."""
        item = {
            k: v
            for k, v in meeting_item(meeting).items()
            if k not in ("pk", "sk", *_SESSION_FIELDS)
        }
        names = {f"#{k}": k for k in item}
        sets = [f"#{k} = :{k}" for k in item if item[k] is not None]
        removes = [f"#{k}" for k in item if item[k] is None]
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        values = {f":{k}": dynamo.value(v) for k, v in item.items() if v is not None}
        values[":expected"] = dynamo.value(expected_updated_at)
        try:
            dynamo.client().update_item(
                TableName=self._table,
                Key=dynamo.to_ddb(meeting_key(meeting.meeting_id)),
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

    def delete_meeting(self, meeting_id: str) -> int:
        """Delete the meeting and everything of its sessions; how many items went. The
        meeting itself goes first, so it is gone for everyone even if a very long history is
        cut at MAX_DELETED_ITEMS (the rest is logged, and unreachable)."""
        dynamo.client().delete_item(
            TableName=self._table, Key=dynamo.to_ddb(meeting_key(meeting_id))
        )
        own = [
            {"pk": i["pk"], "sk": i["sk"]}
            for i in dynamo.query_all(
                self._table,
                "pk = :pk",
                {":pk": meeting_pk(meeting_id)},
                projection="pk, sk, session_id",
                limit_pages=_DELETE_PAGES,
            )
        ]
        keys = list(own)
        for row in own:
            if not row["sk"].startswith(SESSION_INDEX_PREFIX) or len(keys) >= MAX_DELETED_ITEMS:
                continue
            session_id = row["sk"].rsplit("#", 1)[1]
            pk = session_pk(SessionKey(meeting_id, session_id))
            keys += [
                {"pk": i["pk"], "sk": i["sk"]}
                for i in dynamo.query_all(
                    self._table,
                    "pk = :pk",
                    {":pk": pk},
                    projection="pk, sk",
                    limit_pages=_DELETE_PAGES,
                )
            ]
        if len(keys) > MAX_DELETED_ITEMS:
            log.warning(
                "meeting %s: %d items left after deletion",
                meeting_id,
                len(keys) - MAX_DELETED_ITEMS,
            )
        return 1 + dynamo.delete_keys(self._table, keys[:MAX_DELETED_ITEMS])

    def meetings_of_host(self, host_id: str) -> list[Meeting]:
        items = dynamo.query_all(self._table, "host_id = :h", {":h": host_id}, index="by_host")
        return [meeting_from_item(item) for item in items]
