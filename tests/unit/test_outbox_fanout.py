"""The outbox consumer's delivery rules, over in-memory stand-ins for the roster, the
@connections poster and the slice invocations (the twin tests run it over a real stream)."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from townhall.model.event import (
    MODERATORS,
    Audience,
    MalformedEvent,
    OutboxEvent,
)
from townhall.model.participant import Recipient
from townhall.model.session import SessionKey
from townhall.outbox.fanout import (
    OutboxFanout,
    PoisonedRecord,
    StreamRecord,
    read_records,
    read_slice_request,
)
from townhall.store.dynamo import to_ddb
from townhall.store.outbox import event_from_image, event_item

KEY = SessionKey("m1", "s1")


class Roster:
    def __init__(self, people: list[Recipient]) -> None:
        self.people = people
        self.reads = 0

    def recipients(self, session: SessionKey) -> list[Recipient]:
        assert session == KEY
        self.reads += 1
        return list(self.people)


class Poster:
    """Records what each connection got, in order; `gone` connections answer 410."""

    def __init__(self, gone: Sequence[str] = ()) -> None:
        self.got: dict[str, list[str]] = {}
        self.gone = set(gone)
        self.calls = 0
        self._lock = threading.Lock()

    def post_sequences(self, sequences: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
        gone: list[str] = []
        with self._lock:
            self.calls += 1
            for connection_id, messages in sequences:
                if connection_id in self.gone:
                    gone.append(connection_id)
                    continue
                self.got.setdefault(connection_id, []).extend(messages)
        return gone


class Slices:
    def __init__(self, poster: Poster) -> None:
        self.poster = poster
        self.slices: list[list[str]] = []

    def post_slice(self, messages: list[str], deliveries: list[tuple[str, list[int]]]) -> list[str]:
        # Through the same JSON the slice function reads.
        wire = json.loads(json.dumps({"messages": messages, "deliveries": deliveries}))
        messages, deliveries = read_slice_request(wire)
        self.slices.append([c for c, _ in deliveries])
        return self.poster.post_sequences(
            [(c, [messages[i] for i in idx]) for c, idx in deliveries]
        )


def person(pid: str, status: str = "admitted", role: str = "guest") -> Recipient:
    return Recipient(participant_id=pid, status=status, role=role, connection_id=f"c-{pid}")  # type: ignore[arg-type]


def encode(event: OutboxEvent) -> str:
    return f"{event.event_id}:{event.type}"


def record(
    seq: int,
    event_type: str = "chat.message",
    audience: Audience | None = None,
    *,
    n: int = 0,
    close: bool = False,
) -> StreamRecord:
    event = OutboxEvent(
        "m1", "s1", seq, event_type, {"x": seq}, audience or Audience(), at=1_000, n=n, close=close
    )
    return StreamRecord(f"{seq:021d}{n}", event)


def fanout(
    roster: Roster, poster: Poster, **kwargs: Any
) -> tuple[OutboxFanout, list[tuple[SessionKey, list[str]]], list[str]]:
    gone_calls: list[tuple[SessionKey, list[str]]] = []
    closed: list[str] = []
    consumer = OutboxFanout(
        roster,
        poster,
        encode,
        on_gone=lambda key, gone, known: gone_calls.append((key, sorted(gone))),
        close=closed.append,
        read_image=event_from_image,
        **kwargs,
    )
    return consumer, gone_calls, closed


def test_each_connection_gets_its_events_in_commit_order_and_only_those_meant_for_it() -> None:
    roster = Roster(
        [
            person("host", role="host"),
            person("ann"),
            person("bob"),
            person("wait", status="waiting"),
        ]
    )
    poster = Poster()
    consumer, _, _ = fanout(roster, poster)
    records = [
        record(1),
        record(2, "waiting.joined", MODERATORS),
        record(3, audience=Audience(only=frozenset({"ann", "bob"}))),
        record(4, "meeting.ended", Audience(connected=True)),
        record(4, "participant.updated", Audience(exclude=frozenset({"bob"})), n=1),
    ]
    assert consumer.deliver(records) == []
    assert roster.reads == 1  # one roster read for the session's whole batch
    assert poster.got == {
        "c-host": [
            "1:chat.message",
            "2:waiting.joined",
            "4:meeting.ended",
            "4.1:participant.updated",
        ],
        "c-ann": ["1:chat.message", "3:chat.message", "4:meeting.ended", "4.1:participant.updated"],
        "c-bob": ["1:chat.message", "3:chat.message", "4:meeting.ended"],
        "c-wait": ["4:meeting.ended"],
    }


def test_a_gone_connection_is_cleaned_up_after_the_batch_and_not_closed() -> None:
    roster = Roster([person("ann"), person("bob")])
    poster = Poster(gone=["c-bob"])
    consumer, gone_calls, closed = fanout(roster, poster)
    assert (
        consumer.deliver(
            [record(1), record(2, "meeting.ended", Audience(connected=True), close=True)]
        )
        == []
    )
    assert poster.got == {"c-ann": ["1:chat.message", "2:meeting.ended"]}
    assert gone_calls == [(KEY, ["c-bob"])]
    assert closed == ["c-ann"]  # closed after its last event; the gone one is not closed again


def test_the_end_closes_every_connection_it_reaches_but_the_callers() -> None:
    roster = Roster([person("host", role="host"), person("ann"), person("wait", status="waiting")])
    poster = Poster()
    consumer, _, closed = fanout(roster, poster)
    event = OutboxEvent(
        "m1",
        "s1",
        9,
        "meeting.ended",
        {},
        Audience(connected=True),
        close=True,
        keep_open=("c-host",),
    )
    assert consumer.deliver([StreamRecord("9", event)]) == []
    assert sorted(poster.got) == ["c-ann", "c-host", "c-wait"]
    assert sorted(closed) == ["c-ann", "c-wait"]


@pytest.mark.parametrize("at", [0, 1, 3])
def test_a_malformed_record_fails_the_invocation_before_anything_is_posted(at: int) -> None:
    """A function error, so the event source mapping bisects the batch: the records around it
    are delivered in their halves, and it alone goes to the failure destination."""
    poster = Poster()
    consumer, _, _ = fanout(Roster([person("ann")]), poster)
    records = [record(1), record(2), record(3)]
    records.insert(at, StreamRecord("0000000000000000000025", None, "not an event record"))
    with pytest.raises(PoisonedRecord, match="1 of 4 records"):
        consumer.deliver(records)
    assert poster.got == {}


def test_a_failed_roster_read_reports_the_sessions_first_record() -> None:
    class Broken(Roster):
        def recipients(self, session: SessionKey) -> list[Recipient]:
            raise RuntimeError("store unavailable")

    poster = Poster()
    consumer, _, _ = fanout(Broken([]), poster)
    records = [record(7), record(8)]
    assert consumer.deliver(records) == [records[0].sequence_number]
    assert poster.got == {}


def test_a_large_session_is_split_into_slices_each_in_order() -> None:
    people = [person(f"p{i:04d}") for i in range(450)]
    roster = Roster(people)
    poster = Poster()
    slices = Slices(poster)
    consumer, _, _ = fanout(roster, poster, slices=slices, slice_connections=200)
    assert consumer.deliver([record(1), record(2), record(3)]) == []
    assert len(slices.slices) == 2  # the first of three slices is posted by the consumer itself
    assert all(len(s) <= 200 for s in slices.slices)
    assert len(poster.got) == 450
    assert all(
        m == ["1:chat.message", "2:chat.message", "3:chat.message"] for m in poster.got.values()
    )


def test_records_are_read_from_the_stream_event_shape() -> None:
    event = OutboxEvent("m1", "s1", 9, "reaction", {"emoji": "🎉"}, MODERATORS, at=5_000, n=2)
    image = to_ddb(event_item(KEY, event))
    stream_event = {
        "Records": [
            {"eventName": "INSERT", "dynamodb": {"SequenceNumber": "100", "NewImage": image}},
            {
                "eventName": "INSERT",
                "dynamodb": {"SequenceNumber": "101", "NewImage": {"pk": {"S": "x"}}},
            },
        ]
    }
    first, second = read_records(stream_event, event_from_image)
    assert first == StreamRecord("100", event)
    assert second.event is None and second.sequence_number == "101"
    with pytest.raises(MalformedEvent):
        read_records({"Records": [{"dynamodb": {}}]}, event_from_image)


@pytest.mark.parametrize(
    "item",
    [
        {"v": 2},
        {"v": 1, "type": "x", "meeting_id": "m", "session_id": "s", "seq": 1, "payload": []},
        {"v": 1, "type": "", "meeting_id": "m", "session_id": "s", "seq": 1, "payload": {}},
        {"v": 1, "type": "x", "meeting_id": "m", "session_id": "s", "seq": "one", "payload": {}},
        {
            "v": 1,
            "type": "x",
            "meeting_id": "m",
            "session_id": "s",
            "seq": 1,
            "payload": {},
            "audience": {"only": ["a"] * 2001},
        },
        {
            "v": 1,
            "type": "x",
            "meeting_id": "m",
            "session_id": "s",
            "seq": 1,
            "payload": {},
            "audience": {"roles": [1]},
        },
    ],
)
def test_unreadable_records_are_malformed(item: dict[str, Any]) -> None:
    with pytest.raises(MalformedEvent):
        OutboxEvent.from_record(item)


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"messages": "x", "deliveries": []},
        {"messages": ["a"], "deliveries": [["c", [1]]]},
        {"messages": ["a"], "deliveries": [["c", [-1]]]},
        {"messages": ["a"], "deliveries": [["c"]]},
        {"messages": [1], "deliveries": []},
        {"messages": ["a"], "deliveries": [[5, [0]]]},
    ],
)
def test_slice_requests_are_validated(event: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        read_slice_request(event)


def test_a_batch_larger_than_one_slice_payload_goes_out_in_parts_in_order() -> None:
    people = [person(f"p{i:04d}") for i in range(250)]
    poster = Poster()
    slices = Slices(poster)
    big = "x" * 100_000  # 60 of these exceed one slice invocation's 4 MB
    records = [
        StreamRecord(str(i), OutboxEvent("m1", "s1", i, "chat.message", {"t": big}, at=1, n=0))
        for i in range(1, 61)
    ]
    consumer = OutboxFanout(
        Roster(people),
        poster,
        lambda e: f"{e.event_id}:{e.payload['t']}",
        on_gone=lambda key, gone, known: None,
        close=lambda c: None,
        read_image=event_from_image,
        slices=slices,
        slice_connections=200,
    )
    assert consumer.deliver(records) == []
    assert len(slices.slices) >= 2  # at least two parts, each sliced
    for messages in poster.got.values():
        assert [m.split(":")[0] for m in messages] == [str(i) for i in range(1, 61)]
