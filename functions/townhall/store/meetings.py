"""Meetings in the Meetings table: the `META` item of the meeting's partition, `M#{meeting_id}`.

`META` holds the schedule and settings a host edits (title, kind, start, time zone, duration,
RRULE, passcode, waiting room, video slots, allow guests before the host, co-hosts) and the
pointer to the session running now (`live_session_id`, written only by `store.sessions`, in
the same transaction that starts or ends a session). The `by_host` index (host_id, start_utc) lists a
host's meetings. The partition also holds the meeting's session index (`store.sessions`) and
its media placement (`store.placement`); each session has a partition of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, Protocol

from botocore.exceptions import ClientError

from townhall.model.meeting import MAX_COHOSTS, MAX_VIDEO_SLOTS, Meeting
from townhall.model.schedule import Schedule
from townhall.model.session import MeetingKind, SessionKey
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
# `Meeting.updated_at` of an item whose stored `updated_at` cannot be read.
UNREADABLE = -1
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
        "cohosts": list(meeting.cohosts),
        "live_session_id": meeting.live_session_id,
        "last_session_at": meeting.last_session_at,
    }


def meeting_from_item(item: Mapping[str, Any]) -> Meeting:
    """The meeting as stored, whatever the item holds (written before validation, by hand, or
    by a bug). Never raises: an attribute that cannot be read gets a default and is named in
    `Meeting.damaged`, and a schedule that cannot be used is reported by `Schedule.problem`,
    so one bad item is listed, flagged, instead of failing the host's whole list."""
    read = _Reader(item)
    webinar = read.choice("kind", ("meeting", "webinar"), "meeting") == "webinar"
    kind: MeetingKind = "webinar" if webinar else "meeting"
    schedule = Schedule(
        start_local=_stored_start(item.get("start_local")),
        timezone=item.get("timezone", ""),
        duration_minutes=_stored_int(item.get("duration_minutes")),
        rrule=item.get("rrule"),
    )
    return Meeting(
        meeting_id=read.meeting_id(),
        host_id=read.text("host_id"),
        title=read.text("title"),
        kind=kind,
        schedule=schedule,
        passcode=read.optional_text("passcode"),
        waiting_room=read.flag("waiting_room"),
        created_at=read.whole("created_at", 0, required=True),
        updated_at=read.whole("updated_at", UNREADABLE, required=True),
        video_slots=read.whole("video_slots", 9, low=1, high=MAX_VIDEO_SLOTS),
        allow_before_host=read.flag("allow_before_host"),
        cohosts=read.emails("cohosts"),
        live_session_id=read.optional_text("live_session_id"),
        last_session_at=read.whole("last_session_at", 0, low=0),
        damaged=tuple(read.damaged),
    )


class _Reader:
    """Reads one stored item attribute by attribute, noting each that cannot be read."""

    def __init__(self, item: Mapping[str, Any]) -> None:
        self._item = item
        self.damaged: list[str] = []

    def _bad(self, name: str) -> None:
        if name not in self.damaged:
            self.damaged.append(name)

    def meeting_id(self) -> str:
        pk = self._item.get("pk")
        from_key = pk[2:] if isinstance(pk, str) and pk.startswith("M#") else ""
        stored = self._item.get("meeting_id")
        if isinstance(stored, str) and stored and (not from_key or stored == from_key):
            return stored
        self._bad("meeting_id")
        return from_key

    def text(self, name: str) -> str:
        value = self._item.get(name)
        if isinstance(value, str):
            return value
        self._bad(name)
        return ""

    def optional_text(self, name: str) -> str | None:
        value = self._item.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            return value
        self._bad(name)
        return None

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        value = self._item.get(name, default)
        if isinstance(value, str) and value in allowed:
            return value
        self._bad(name)
        return default

    def flag(self, name: str) -> bool:
        value = self._item.get(name, False)
        if isinstance(value, bool):
            return value
        self._bad(name)
        return False

    def whole(
        self,
        name: str,
        default: int,
        *,
        required: bool = False,
        low: int | None = None,
        high: int | None = None,
    ) -> int:
        if name not in self._item and not required:
            return default
        value = _whole(self._item.get(name))
        if value is not None and (low is None or low <= value) and (high is None or value <= high):
            return value
        self._bad(name)
        return default

    def emails(self, name: str) -> tuple[str, ...]:
        value = self._item.get(name)
        if value is None:
            return ()
        if (
            isinstance(value, list | tuple)
            and len(value) <= MAX_COHOSTS
            and all(isinstance(e, str) for e in value)
        ):
            return tuple(dict.fromkeys(e.strip().lower() for e in value))
        self._bad(name)
        return ()


def _whole(value: Any) -> int | None:
    """A stored whole number (the store reads integral numbers as int), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


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

    def save_meeting(
        self, meeting: Meeting, expected_updated_at: int, repairs: Collection[str] = ()
    ) -> bool: ...

    def delete_meeting(self, meeting_id: str) -> int: ...

    def meetings_of_host(self, host_id: str) -> list[Meeting]: ...

    def host_page(
        self, host_id: str, limit: int, after: tuple[str, str] | None
    ) -> tuple[list[tuple[Meeting, str]], bool]: ...


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

    def save_meeting(
        self, meeting: Meeting, expected_updated_at: int, repairs: Collection[str] = ()
    ) -> bool:
        """Replace the meeting's editable fields if nobody else changed it since it was read.

        `repairs`: the attributes the read found damaged (`Meeting.damaged`). A damaged
        `updated_at` is matched as it is stored now; a damaged pointer to the running session
        cannot name one, so it is removed (and a damaged `last_session_at` reset)."""
        item = {
            k: v
            for k, v in meeting_item(meeting).items()
            if k not in ("pk", "sk", *_SESSION_FIELDS)
        }
        if "last_session_at" in repairs:
            item["last_session_at"] = 0
        if "live_session_id" in repairs:
            item["live_session_id"] = None
        names = {f"#{k}": k for k in item}
        sets = [f"#{k} = :{k}" for k in item if item[k] is not None]
        removes = [f"#{k}" for k in item if item[k] is None]
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        values = {f":{k}": dynamo.value(v) for k, v in item.items() if v is not None}
        condition = "attribute_exists(pk) AND updated_at = :expected"
        if "updated_at" in repairs:
            stored = dynamo.get(self._table, meeting_key(meeting.meeting_id))
            if stored is None or _whole(stored.get("updated_at")) is not None:
                return False  # gone, or repaired by someone else meanwhile
            if "updated_at" not in stored:
                condition = "attribute_exists(pk) AND attribute_not_exists(updated_at)"
            else:
                values[":expected"] = dynamo.value(stored["updated_at"])
        else:
            values[":expected"] = dynamo.value(expected_updated_at)
        try:
            dynamo.client().update_item(
                TableName=self._table,
                Key=dynamo.to_ddb(meeting_key(meeting.meeting_id)),
                UpdateExpression=expression,
                ConditionExpression=condition,
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

    def host_page(
        self, host_id: str, limit: int, after: tuple[str, str] | None
    ) -> tuple[list[tuple[Meeting, str]], bool]:
        """Up to `limit` of the host's meetings by scheduled start (UTC), each with its
        stored `start_utc` (a page's position), after the one `after` names (its id and
        start_utc); and whether more may follow."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "by_host",
            "KeyConditionExpression": "host_id = :h",
            "ExpressionAttributeValues": {":h": dynamo.value(host_id)},
            "Limit": limit,
        }
        if after is not None:
            meeting_id, start_utc = after
            request["ExclusiveStartKey"] = dynamo.to_ddb(
                {**meeting_key(meeting_id), "host_id": host_id, "start_utc": start_utc}
            )
        page = dynamo.client().query(**request)
        items = [dynamo.from_ddb(raw) for raw in page.get("Items", [])]
        meetings = [(meeting_from_item(item), str(item["start_utc"])) for item in items]
        return meetings, "LastEvaluatedKey" in page
