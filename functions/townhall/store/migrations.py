"""Migrations of the Meetings table's layout, run once per version, idempotent and resumable.

The table records the layout it holds in one item, `pk = SCHEMA, sk = VERSION`. The twin runs
`migrate` on start, after restoring its tables; in AWS, run it once after a deploy that needs
it (`python -m townhall.store.migrations --table <name>`, with AWS credentials).

Version 2: meetings become a series of sessions. Before it, a meeting's partition held
everything of its one run (participants, chat, polls, questions, strokes, attendance under
`S#...`, request records) and the meeting itself carried `seq`, `locked` and `ended_at`. Each
meeting that ran becomes a meeting with one **ended** session, `s_legacy`: its items move to
that session's partition (attendance to `A#...`), the session gets its `META` and index row,
and the meeting loses the three fields. A meeting that was running ends with the migration
(after a restart no connection survives).

A run may stop anywhere (a crash, a throttle, a lost connection), and running it again ends
in the same state as one uninterrupted run. Per meeting, the steps are ordered so that each
can be repeated:

1. the session's `META` is written first, and only if it is not there yet: every value that
   depends on when the migration ran or on which items are still to move (`started_at`,
   `ended_at`) is decided once, in it, and a rerun reads it back instead of deciding again;
2. the index row's key is derived from that `META` (any other `s_legacy` row, as an older
   version of this code could leave behind, is deleted);
3. each run item is put into the session's partition, then deleted from the meeting's (a
   rerun puts the same item again: `_moved` depends on nothing but the item);
4. last, the meeting's `META` loses the old fields: until then the meeting is found again.

The `SCHEMA` item is written only after every meeting is done.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from townhall import clock
from townhall.model.session import Session, SessionKey
from townhall.store import dynamo
from townhall.store.keys import meeting_pk, session_pk
from townhall.store.meetings import META_SK
from townhall.store.sessions import INDEX_PREFIX, index_sk, session_from_item, session_item

SCHEMA_KEY = {"pk": "SCHEMA", "sk": "VERSION"}
CURRENT_VERSION = 2
LEGACY_SESSION_ID = "s_legacy"
_LEGACY_FIELDS = ("seq", "locked", "ended_at")
# Sort keys that stay with the meeting: its settings, its media placement, its session index.
_MEETING_ITEMS = (META_SK, "MEDIA")
# Bound on the pages a scan or a partition's query may take (a page is up to 1 MB).
_MAX_PASSES = 10_000


def version(table: str) -> int:
    item = dynamo.get(table, SCHEMA_KEY)
    return int(item["version"]) if item else 1


def migrate(table: str) -> int:
    """Bring the table to the current layout; the number of meetings that were moved."""
    moved = 0
    if version(table) < 2:
        # Read the whole list first: the moves below write to and delete from the table
        # being scanned.
        for meta in list(_legacy_meetings(table)):
            _to_sessions(table, meta)
            moved += 1
        _put(table, {**SCHEMA_KEY, "version": CURRENT_VERSION})
    return moved


def _legacy_meetings(table: str) -> Iterator[dict[str, Any]]:
    """META items of meetings that carry the old run-state fields."""
    request: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "sk = :meta AND begins_with(pk, :m) AND attribute_exists(seq)",
        "ExpressionAttributeValues": {":meta": {"S": META_SK}, ":m": {"S": "M#"}},
        "ConsistentRead": True,
    }
    for _ in range(_MAX_PASSES):
        page = dynamo.client().scan(**request)
        for raw in page.get("Items", []):
            item = dynamo.from_ddb(raw)
            if "#S#" not in item["pk"]:
                yield item
        last = page.get("LastEvaluatedKey")
        if not last:
            return
        request["ExclusiveStartKey"] = last


def _to_sessions(table: str, meta: dict[str, Any]) -> None:
    meeting_id = meta["meeting_id"]
    key = SessionKey(meeting_id, LEGACY_SESSION_ID)
    partition = _partition(table, meeting_pk(meeting_id))
    items = [i for i in partition if _is_run_item(i)]
    session = _legacy_session(table, meta, key, items)
    if session is not None:
        row = _index_row(session)
        for stale in partition:
            if _is_legacy_row(stale) and stale["sk"] != row["sk"]:
                _delete(table, stale)
        _put(table, row)
        for item in items:
            _put(table, _moved(item, key))
            _delete(table, item)
    names = {f"#{f}": f for f in _LEGACY_FIELDS}
    remove = ", ".join(names)
    try:
        dynamo.client().update_item(
            TableName=table,
            Key=dynamo.to_ddb({"pk": meeting_pk(meeting_id), "sk": META_SK}),
            UpdateExpression=f"REMOVE {remove}, live_session_id SET last_session_at = :at",
            # Never an upsert: a meeting deleted meanwhile must not come back as a stub.
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={":at": dynamo.value(session.started_at if session else 0)},
        )
    except ClientError as exc:
        if not dynamo.is_condition_failure(exc):
            raise


def _legacy_session(
    table: str, meta: dict[str, Any], key: SessionKey, items: list[dict[str, Any]]
) -> Session | None:
    """The meeting's one session, as an earlier (interrupted) run wrote it, or written now;
    None for a meeting that never ran."""
    meta_key = {"pk": session_pk(key), "sk": META_SK}
    existing = dynamo.get(table, meta_key)
    if existing is not None:
        return session_from_item(existing)
    # Nothing moves before the META is written; still, count what is already there.
    moved = [i for i in _partition(table, session_pk(key)) if i["sk"] != META_SK]
    if not items and not moved and not meta.get("ended_at"):
        return None
    created = [
        int(i["created_at"])
        for i in items + moved
        if i["sk"].startswith("P#") and i.get("created_at")
    ]
    started_at = 1000 * min(created or [int(meta.get("created_at", clock.now()))])
    ended_at = 1000 * int(meta["ended_at"]) if meta.get("ended_at") else clock.now_ms()
    session = Session(
        meeting_id=key.meeting_id,
        session_id=key.session_id,
        started_at=started_at,
        started_by=meta["host_id"],
        title=meta["title"],
        kind=meta.get("kind", "meeting"),
        host_id=meta["host_id"],
        waiting_room=bool(meta.get("waiting_room", False)),
        video_slots=int(meta.get("video_slots", 9)),
        locked=bool(meta.get("locked", False)),
        ended_at=max(ended_at, started_at),
        seq=int(meta.get("seq", 0)),
    )
    try:
        dynamo.client().put_item(
            TableName=table,
            Item=dynamo.to_ddb(session_item(session)),
            ConditionExpression="attribute_not_exists(pk)",
        )
    except ClientError as exc:
        if not dynamo.is_condition_failure(exc):
            raise
        # Another run of the migration wrote it first: its values stand.
        found = dynamo.get(table, meta_key)
        if found is None:
            raise
        return session_from_item(found)
    return session


def _index_row(session: Session) -> dict[str, Any]:
    return {
        "pk": meeting_pk(session.meeting_id),
        "sk": index_sk(session.started_at, session.session_id),
        "session_id": session.session_id,
        "started_at": session.started_at,
        "started_by": session.started_by,
        "ended_at": session.ended_at,
    }


def _partition(table: str, pk: str) -> list[dict[str, Any]]:
    return list(
        dynamo.query_all(table, "pk = :pk", {":pk": pk}, consistent=True, limit_pages=_MAX_PASSES)
    )


def _is_run_item(item: dict[str, Any]) -> bool:
    """An item of the meeting's partition that belongs to its run."""
    sk: str = item["sk"]
    return sk not in _MEETING_ITEMS and not sk.startswith(INDEX_PREFIX)


def _is_legacy_row(item: dict[str, Any]) -> bool:
    sk: str = item["sk"]
    return sk.startswith(INDEX_PREFIX) and sk.endswith("#" + LEGACY_SESSION_ID)


def _moved(item: dict[str, Any], key: SessionKey) -> dict[str, Any]:
    moved = {**item, "pk": session_pk(key)}
    sk: str = item["sk"]
    if sk.startswith("S#"):  # attendance intervals now live under A#
        moved["sk"] = "A#" + sk[2:]
    if sk.startswith("P#"):
        moved["session_id"] = key.session_id
        moved.pop("connection_id", None)  # no connection survives a restart
    return moved


def _put(table: str, item: dict[str, Any]) -> None:
    dynamo.client().put_item(TableName=table, Item=dynamo.to_ddb(item))


def _delete(table: str, item: dict[str, Any]) -> None:
    dynamo.client().delete_item(
        TableName=table, Key=dynamo.to_ddb({"pk": item["pk"], "sk": item["sk"]})
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True, help="the Meetings table's name")
    args = parser.parse_args()
    before = version(args.table)
    moved = migrate(args.table)
    print(f"{args.table}: layout {before} -> {version(args.table)}, {moved} meetings moved")


if __name__ == "__main__":
    main()
