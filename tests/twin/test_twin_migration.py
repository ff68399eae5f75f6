"""A data folder written before meetings had sessions still works after a restart: the twin
migrates it on start (townhall.store.migrations), as docs/data-model.md describes."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from infra.twin import LocalTwin
from infra.twin.server import TwinOptions
from townhall.store.migrations import LEGACY_SESSION_ID, SCHEMA_KEY

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _legacy_items(meeting_id: str, host_id: str, ended: bool) -> list[dict[str, Any]]:
    """One meeting as the layout before sessions stored it: its one run in the meeting's
    partition, and seq, locked and ended_at on the meeting itself."""
    pk = f"M#{meeting_id}"
    now = int(time.time()) - 3600
    meta: dict[str, Any] = {
        "pk": pk,
        "sk": "META",
        "meeting_id": meeting_id,
        "host_id": host_id,
        "title": "Before sessions",
        "kind": "meeting",
        "start_local": "2026-11-02T09:00",
        "start_utc": "2026-11-02T09:00:00Z",
        "timezone": "UTC",
        "duration_minutes": 30,
        "rrule": "FREQ=WEEKLY",
        "waiting_room": False,
        "created_at": now - 100,
        "updated_at": now - 100,
        "locked": True,
        "video_slots": 9,
        "seq": 7,
    }
    if ended:
        meta["ended_at"] = now
    return [
        meta,
        {
            "pk": pk,
            "sk": "P#p_old",
            "meeting_id": meeting_id,
            "participant_id": "p_old",
            "name": "Olga",
            "role": "attendee",
            "status": "admitted",
            "connection_id": "gone=",
            "rev": 3,
            "created_at": now - 50,
        },
        {
            "pk": pk,
            "sk": "C#000000000004",
            "message_id": 4,
            "from": "p_old",
            "from_name": "Olga",
            "private": False,
            "text": "hello from before",
            "ts": (now - 40) * 1000,
        },
        {
            "pk": pk,
            "sk": f"S#p_old#{(now - 45) * 1000:013d}",
            "participant_id": "p_old",
            "joined_at": (now - 45) * 1000,
            "left_at": (now - 10) * 1000,
        },
        {"pk": pk, "sk": "MEDIA", "node_id": "node-1", "placed_at": now},
    ]


def test_a_data_folder_from_before_sessions_works_after_a_restart(tmp_path: Path) -> None:
    with LocalTwin.start(tmp_path, options=TwinOptions()) as first:
        http = httpx.Client(base_url=first.base_url, timeout=15)
        host = http.post(
            "/api/auth/signup",
            json={
                "email": f"m-{uuid.uuid4().hex[:8]}@example.com",
                "password": "correct horse 1",
                "name": "Hana Host",
            },
        ).json()
        db, table = first.dynamodb_client(), first.table_names["MEETINGS_TABLE"]
        for meeting_id, ended in (("legacyend1", True), ("legacyrun1", False)):
            for item in _legacy_items(meeting_id, host["user_id"], ended):
                db.put_item(
                    TableName=table, Item={k: _serializer.serialize(v) for k, v in item.items()}
                )
        # As a folder written by the old layout: no layout version recorded.
        db.delete_item(
            TableName=table, Key={k: _serializer.serialize(v) for k, v in SCHEMA_KEY.items()}
        )

    with LocalTwin.start(tmp_path, options=TwinOptions()) as second:
        http = httpx.Client(base_url=second.base_url, timeout=15)
        auth = {"authorization": f"Bearer {host['access_token']}"}
        db, table = second.dynamodb_client(), second.table_names["MEETINGS_TABLE"]
        for meeting_id in ("legacyend1", "legacyrun1"):
            meta = {
                k: _deserializer.deserialize(v)
                for k, v in db.get_item(
                    TableName=table,
                    Key={"pk": {"S": f"M#{meeting_id}"}, "sk": {"S": "META"}},
                )["Item"].items()
            }
            assert not {"seq", "locked", "ended_at", "live_session_id"} & set(meta)
            old = db.query(
                TableName=table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"M#{meeting_id}"}},
            )["Items"]
            assert sorted(i["sk"]["S"].split("#")[0] for i in old) == ["MEDIA", "META", "SESSION"]

            page = http.get(f"/api/meetings/{meeting_id}/sessions", headers=auth).json()
            assert [(s["session_id"], s["live"]) for s in page["sessions"]] == [
                (LEGACY_SESSION_ID, False)
            ]
            summary = http.get(f"/api/meetings/{meeting_id}/summary", headers=auth).json()
            assert summary["meeting"]["ended_at"] is not None
            assert [(a["name"], len(a["intervals"])) for a in summary["attendance"]] == [
                ("Olga", 1)
            ]
            assert [m["text"] for m in summary["chat"]] == ["hello from before"]

        # The meeting goes on: the host starts a new session, a guest joins it.
        grant = http.post("/api/meetings/legacyend1/join", json={}, headers=auth).json()
        assert grant["session_id"] != LEGACY_SESSION_ID
        guest = http.post(
            "/api/meetings/legacyend1/join",
            json={"display_name": "Gus", "guest_key": "g" * 24},
        )
        assert guest.status_code == 200 and guest.json()["session_id"] == grant["session_id"]
