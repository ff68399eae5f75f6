"""Migrations of the Meetings table's layout, run once per version, idempotent.

The table records the layout it holds in one item, `pk = SCHEMA, sk = VERSION`. The twin runs
`migrate` on start, after restoring its tables; in AWS, run it once after a deploy that needs
it (`python -m townhall.store.migrations --table <name>`, with AWS credentials).

Version 2: meetings become a series of sessions. Before it, a meeting's partition held
everything of its one run (participants, chat, polls, questions, strokes, attendance under
`S#...`, request records) and the meeting itself carried `seq`, `locked` and `ended_at`. Each
meeting that ran becomes a meeting with one **ended** session, `s_legacy`: its items move to
that session's partition (attendance to `A#...`), the session gets its `META` and index row,
and the meeting loses the three fields. A meeting that was running ends with the migration
(after a restart no connection survives). The session id is fixed, so a migration stopped
half-way writes the same keys when it runs again.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from townhall import clock
from townhall.model.session import Session, SessionKey
from townhall.store import dynamo
from townhall.store.keys import meeting_pk, session_pk
from townhall.store.meetings import META_SK
from townhall.store.sessions import INDEX_PREFIX, index_sk, session_item

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
        for meta in _legacy_meetings(table):
            _to_sessions(table, meta)
            moved += 1
        dynamo.client().put_item(
            TableName=table, Item=dynamo.to_ddb({**SCHEMA_KEY, "version": CURRENT_VERSION})
        )
    return moved


def _legacy_meetings(table: str) -> Iterator[dict[str, Any]]:
    """META items of meetings that carry the old run-state fields."""
    request: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "sk = :meta AND begins_with(pk, :m) AND attribute_exists(seq)",
        "ExpressionAttributeValues": {":meta": {"S": META_SK}, ":m": {"S": "M#"}},
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
    items = list(_run_items(table, meeting_id))
    created = [
        int(i["created_at"]) for i in items if i["sk"].startswith("P#") and i.get("created_at")
    ]
    started_at = 1000 * min(created or [int(meta.get("created_at", clock.now()))])
    ended_at = 1000 * int(meta["ended_at"]) if meta.get("ended_at") else clock.now_ms()
    if items or meta.get("ended_at"):
        session = Session(
            meeting_id=meeting_id,
            session_id=LEGACY_SESSION_ID,
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
        _put(table, session_item(session))
        _put(
            table,
            {
                "pk": meeting_pk(meeting_id),
                "sk": index_sk(started_at, LEGACY_SESSION_ID),
                "session_id": LEGACY_SESSION_ID,
                "started_at": started_at,
                "started_by": meta["host_id"],
                "ended_at": session.ended_at,
            },
        )
        for item in items:
            _put(table, _moved(item, key))
            dynamo.client().delete_item(
                TableName=table, Key=dynamo.to_ddb({"pk": item["pk"], "sk": item["sk"]})
            )
    names = {f"#{f}": f for f in _LEGACY_FIELDS}
    remove = ", ".join(names)
    dynamo.client().update_item(
        TableName=table,
        Key=dynamo.to_ddb({"pk": meeting_pk(meeting_id), "sk": META_SK}),
        UpdateExpression=f"REMOVE {remove}, live_session_id SET last_session_at = :at",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={":at": dynamo.value(started_at if items else 0)},
    )


def _run_items(table: str, meeting_id: str) -> Iterator[dict[str, Any]]:
    """The items of the meeting's partition that belong to its run."""
    for item in dynamo.query_all(
        table, "pk = :pk", {":pk": meeting_pk(meeting_id)}, limit_pages=_MAX_PASSES
    ):
        if item["sk"] not in _MEETING_ITEMS and not item["sk"].startswith(INDEX_PREFIX):
            yield item


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True, help="the Meetings table's name")
    args = parser.parse_args()
    before = version(args.table)
    moved = migrate(args.table)
    print(f"{args.table}: layout {before} -> {version(args.table)}, {moved} meetings moved")


if __name__ == "__main__":
    main()
