"""The sessions migration (townhall.store.migrations) converges: stopped after any one of its
writes and run again, later, it leaves the table exactly as one uninterrupted run does.

DynamoDB is moto's, in process; a run is stopped by a client that raises instead of making
its n-th write (a crash, a throttle that outlasts the retries, a lost connection)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from townhall import clock
from townhall.schema import MEETINGS
from townhall.store import dynamo
from townhall.store.migrations import LEGACY_SESSION_ID, SCHEMA_KEY, migrate, version

HOST = "u_host"
# When the clean run and the interrupted one happen; the rerun is an hour later.
T0 = 1_790_000_000.0
_WRITES = frozenset(
    {"put_item", "delete_item", "update_item", "batch_write_item", "transact_write_items"}
)


class Interrupted(Exception):
    """The migration's process died before this write."""


class StoppingClient:
    """A DynamoDB client that makes the first `writes_allowed` writes, then raises."""

    def __init__(self, real: Any, writes_allowed: int | None) -> None:
        self._real = real
        self.writes_allowed = writes_allowed
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._real, name)
        if name not in _WRITES:
            return method

        def write(**request: Any) -> Any:
            if self.writes_allowed is not None and self.writes >= self.writes_allowed:
                raise Interrupted(f"stopped before write {self.writes + 1} ({name})")
            self.writes += 1
            return method(**request)

        return write


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(dynamo, "_clients", {})
    with mock_aws():
        yield boto3.client("dynamodb")


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The control plane's clock, frozen at `now[0]` (set it to move it)."""
    frozen = [T0]
    monkeypatch.setattr(clock, "now", lambda: frozen[0])
    return frozen


def _create(db: Any, table: str) -> None:
    """The Meetings table as townhall.schema defines it (keys and the by_host index)."""
    (index,) = MEETINGS.indexes
    assert MEETINGS.sort_key is not None and index.sort_key is not None
    keys = (MEETINGS.partition_key, MEETINGS.sort_key, index.partition_key, index.sort_key)
    db.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": k.name, "AttributeType": k.type} for k in keys],
        KeySchema=[
            {"AttributeName": MEETINGS.partition_key.name, "KeyType": "HASH"},
            {"AttributeName": MEETINGS.sort_key.name, "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": index.name,
                "KeySchema": [
                    {"AttributeName": index.partition_key.name, "KeyType": "HASH"},
                    {"AttributeName": index.sort_key.name, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


def _meeting(meeting_id: str, *, ended: bool, seq: int = 7) -> dict[str, Any]:
    base = int(T0) - 3600
    meta: dict[str, Any] = {
        "pk": f"M#{meeting_id}",
        "sk": "META",
        "meeting_id": meeting_id,
        "host_id": HOST,
        "title": f"Before sessions {meeting_id}",
        "kind": "meeting",
        "start_local": "2026-11-02T09:00",
        "start_utc": "2026-11-02T09:00:00Z",
        "timezone": "UTC",
        "duration_minutes": 30,
        "rrule": "FREQ=WEEKLY",
        "waiting_room": False,
        "created_at": base - 1000,
        "updated_at": base - 1000,
        "locked": True,
        "video_slots": 9,
        "seq": seq,
    }
    if ended:
        meta["ended_at"] = base
    return meta


def _run_items(meeting_id: str, *, everything: bool) -> list[dict[str, Any]]:
    """One run in the old layout: two participants and, with `everything`, an attendance
    interval each, a chat message and a request record. The earlier participant (p_a) sorts,
    and so moves, first: a rerun that recomputed the start from what is left would find p_z's."""
    pk, base = f"M#{meeting_id}", int(T0) - 3600
    items: list[dict[str, Any]] = [
        {"pk": pk, "sk": "MEDIA", "node_id": "node-1", "placed_at": base},
    ]
    for n, (pid, name, created) in enumerate(
        [("p_a", "Ada", base - 300), ("p_z", "Zoe", base - 100)]
    ):
        items.append(
            {
                "pk": pk,
                "sk": f"P#{pid}",
                "meeting_id": meeting_id,
                "participant_id": pid,
                "name": name,
                "role": "host" if n == 0 else "attendee",
                "status": "admitted",
                "connection_id": f"conn{n}=",
                "rev": 3,
                "created_at": created,
            }
        )
        if everything:
            items.append(
                {
                    "pk": pk,
                    "sk": f"S#{pid}#{(created + 5) * 1000:013d}",
                    "participant_id": pid,
                    "joined_at": (created + 5) * 1000,
                    "left_at": (base - 10) * 1000,
                }
            )
    if everything:
        items += [
            {
                "pk": pk,
                "sk": f"C#{1:012d}",
                "message_id": 1,
                "from": "p_z",
                "from_name": "Zoe",
                "private": False,
                "text": "hello from before",
                "ts": (base - 60) * 1000,
            },
            {"pk": pk, "sk": "R#p_z#req-1", "ttl": base + 600},
        ]
    return items


def _seed(db: Any, table: str) -> None:
    """Meetings of every kind the migration meets: ended and running ones with a run, one
    ended with nothing left of its run, one never run, one already in the new layout."""
    items = [
        _meeting("endedmtg", ended=True),
        *_run_items("endedmtg", everything=True),
        _meeting("runningmtg", ended=False),
        *_run_items("runningmtg", everything=False),
        _meeting("emptyended", ended=True),
        _meeting("neverran", ended=False, seq=0),
        {k: v for k, v in _meeting("modern", ended=False).items() if k not in ("seq", "locked")},
        {
            "pk": "M#modern",
            "sk": "SESSION#1789990000000#s_abc",
            "session_id": "s_abc",
            "started_at": 1_789_990_000_000,
            "started_by": "p_1",
            "ended_at": 1_789_990_100_000,
        },
    ]
    _create(db, table)
    for start in range(0, len(items), 25):
        db.batch_write_item(
            RequestItems={
                table: [
                    {"PutRequest": {"Item": dynamo.to_ddb(i)}} for i in items[start : start + 25]
                ]
            }
        )


def _table(db: Any, table: str) -> list[dict[str, Any]]:
    items = [
        dynamo.from_ddb(raw)
        for page in db.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
        for raw in page["Items"]
    ]
    return sorted(items, key=lambda i: (i["pk"], i["sk"]))


def _migrate(table: str, monkeypatch: pytest.MonkeyPatch, writes_allowed: int | None) -> int:
    """Run the migration through a client that stops after `writes_allowed` writes; the
    number of writes it made."""
    stopping = StoppingClient(dynamo.client(), writes_allowed)
    with monkeypatch.context() as patch:
        patch.setattr(dynamo, "client", lambda: stopping)
        migrate(table)
    return stopping.writes


def test_one_run_moves_each_run_into_one_ended_session(
    aws: Any, now: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(aws, "clean")
    assert version("clean") == 1
    assert migrate("clean") == 4
    after = _table(aws, "clean")
    by_pk: dict[str, list[dict[str, Any]]] = {}
    for item in after:
        by_pk.setdefault(item["pk"], []).append(item)
    started = 1000 * (int(T0) - 3600 - 300)  # the earlier participant's created_at
    for mid, ended_at in (
        ("endedmtg", 1000 * (int(T0) - 3600)),
        ("runningmtg", int(T0 * 1000)),  # ends with the migration
    ):
        meta, *rest = [i for i in by_pk[f"M#{mid}"] if i["sk"] == "META"]
        assert not rest and not {"seq", "locked", "ended_at"} & set(meta)
        assert meta["last_session_at"] == started
        assert [i["sk"] for i in by_pk[f"M#{mid}"]] == [
            "MEDIA",
            "META",
            f"SESSION#{started:013d}#{LEGACY_SESSION_ID}",
        ]
        session = by_pk[f"M#{mid}#S#{LEGACY_SESSION_ID}"]
        (meta,) = [i for i in session if i["sk"] == "META"]
        assert (meta["started_at"], meta["ended_at"], meta["seq"]) == (started, ended_at, 7)
        kinds = ["A", "C", "M", "P", "R"] if mid == "endedmtg" else ["M", "P"]
        assert sorted({i["sk"][0] for i in session}) == kinds
        assert all("connection_id" not in i for i in session)
    # Ended with nothing left of its run: a session of its own still, and the meeting says so.
    (empty,) = [i for i in by_pk["M#emptyended"] if i["sk"] == "META"]
    (row,) = [i for i in by_pk["M#emptyended"] if i["sk"].startswith("SESSION#")]
    assert empty["last_session_at"] == row["started_at"] > 0
    # Never ran: no session; already in the new layout: untouched.
    assert [i["sk"] for i in by_pk["M#neverran"]] == ["META"]
    assert by_pk["M#neverran"][0]["last_session_at"] == 0
    assert f"M#neverran#S#{LEGACY_SESSION_ID}" not in by_pk
    assert [i["sk"] for i in by_pk["M#modern"]] == ["META", "SESSION#1789990000000#s_abc"]
    assert "last_session_at" not in by_pk["M#modern"][0]
    assert version("clean") == 2
    # Once done, done: another run changes nothing.
    now[0] = T0 + 3600
    assert migrate("clean") == 0
    assert _table(aws, "clean") == after


def _clean_runs(db: Any, now: list[float], monkeypatch: pytest.MonkeyPatch) -> dict[float, Any]:
    """The table after one uninterrupted run at each time a test runs the migration at. Only a
    meeting that was running depends on the time: its session ends when the migration first
    writes that session."""
    ends: dict[float, Any] = {}
    for at in (T0, T0 + 60, T0 + 3600):
        table = f"clean-{int(at)}"
        _seed(db, table)
        now[0] = at
        ends[at] = (_migrate(table, monkeypatch, None), _table(db, table))
    now[0] = T0
    return ends


def _running_session_decided(db: Any, table: str) -> bool:
    key = {"pk": f"M#runningmtg#S#{LEGACY_SESSION_ID}", "sk": "META"}
    return "Item" in db.get_item(TableName=table, Key=dynamo.to_ddb(key), ConsistentRead=True)


def test_a_run_stopped_after_any_write_and_run_again_ends_as_one_clean_run(
    aws: Any, now: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    clean = _clean_runs(aws, now, monkeypatch)
    writes, _ = clean[T0]
    assert writes > 20  # every step of every meeting gets its turn below
    for stop_after in range(writes):
        table = f"stopped-{stop_after}"
        _seed(aws, table)
        now[0] = T0
        with pytest.raises(Interrupted):
            _migrate(table, monkeypatch, stop_after)
        assert version(table) == 1
        decided = T0 if _running_session_decided(aws, table) else T0 + 3600
        now[0] = T0 + 3600  # run again an hour later: nothing decided before may change
        _migrate(table, monkeypatch, None)
        assert _table(aws, table) == clean[decided][1], f"stopped after {stop_after} writes"


def test_a_run_stopped_twice_still_converges(
    aws: Any, now: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    clean = _clean_runs(aws, now, monkeypatch)
    writes, _ = clean[T0]
    for first, second in ((3, 5), (writes // 3, writes // 3), (writes // 2, 2), (writes - 3, 1)):
        table = f"twice-{first}-{second}"
        _seed(aws, table)
        decided: float | None = None
        for at, allowed in ((T0, first), (T0 + 60, second)):
            now[0] = at
            with pytest.raises(Interrupted):
                _migrate(table, monkeypatch, allowed)
            if decided is None and _running_session_decided(aws, table):
                decided = at
        now[0] = T0 + 3600
        _migrate(table, monkeypatch, None)
        expected = clean[T0 + 3600 if decided is None else decided][1]
        assert _table(aws, table) == expected, (first, second)


def test_a_second_index_row_left_by_an_older_run_is_removed(
    aws: Any, now: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An earlier version of the migration, run again after stopping part-way, wrote a second
    index row for s_legacy (its start recomputed from the items still to move). The one that
    matches the session's `META` is what stands; the stray row goes."""
    _seed(aws, "clean")
    migrate("clean")
    expected = _table(aws, "clean")
    _seed(aws, "damaged")
    with pytest.raises(Interrupted):
        _migrate("damaged", monkeypatch, 6)
    stray = {
        "pk": "M#endedmtg",
        "sk": f"SESSION#{1000 * (int(T0) - 3600 - 200):013d}#{LEGACY_SESSION_ID}",
        "session_id": LEGACY_SESSION_ID,
        "started_at": 1000 * (int(T0) - 3600 - 200),
        "started_by": HOST,
        "ended_at": 1000 * (int(T0) - 3600),
    }
    aws.put_item(TableName="damaged", Item=dynamo.to_ddb(stray))
    migrate("damaged")
    assert _table(aws, "damaged") == expected


def test_the_schema_item_is_written_last(
    aws: Any, now: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(aws, "clean")
    writes = _migrate("clean", monkeypatch, None)
    _seed(aws, "almost")
    with pytest.raises(Interrupted):
        _migrate("almost", monkeypatch, writes - 1)
    assert aws.get_item(TableName="almost", Key=dynamo.to_ddb(SCHEMA_KEY)).get("Item") is None
    assert migrate("almost") == 0  # every meeting was done: only the version is left to write
    assert version("almost") == 2
