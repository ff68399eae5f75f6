"""Signaling runs on any stores that keep the Protocols: real actions (a chat message, a poll
vote) against small in-memory implementations, no DynamoDB and no `type: ignore`. The typed
write is what makes this possible: the in-memory session applies the same operations the
DynamoDB one turns into a transaction, and keeps the events of each write in an in-memory
outbox that the real outbox consumer delivers."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from contracts.signaling_events import EventName
from townhall.auth.claims import JoinClaims
from townhall.model.breakout import Breakouts
from townhall.model.chat import ChatMessage
from townhall.model.collaboration import Poll, Question, Stroke
from townhall.model.event import OutboxEvent
from townhall.model.participant import Participant, Recipient, Role
from townhall.model.session import Session, SessionKey
from townhall.outbox.fanout import OutboxFanout, StreamRecord
from townhall.signaling.context import ActionContext, Caller, DuplicateRequestError
from townhall.signaling.protocol import Request, outbox_message
from townhall.signaling.service import SignalingService
from townhall.store.connections import Connection
from townhall.store.writes import (
    AddChatMessage,
    AlreadyVoted,
    CastVote,
    CloseAttendance,
    DuplicateRequest,
    OpenAttendance,
    Operation,
    ParticipantChange,
    PollClosed,
    PublishEvent,
    SessionEnded,
    StaleWrite,
)

NOW = 1_700_000_000.0


@dataclass
class Room:
    """Everything of one session, in memory."""

    session: Session
    participants: dict[str, Participant] = field(default_factory=dict)
    chat: list[ChatMessage] = field(default_factory=list)
    polls: dict[str, Poll] = field(default_factory=dict)
    votes: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    served: set[tuple[str, str]] = field(default_factory=set)
    outbox: list[OutboxEvent] = field(default_factory=list)


class MemorySessions:
    def __init__(self, room: Room) -> None:
        self.room = room

    def get(self, key: SessionKey) -> Session | None:
        return self.room.session if key == self.room.session.key else None

    def load(
        self, key: SessionKey, participant_id: str, request_id: str | None = None
    ) -> tuple[Session | None, Participant | None, bool]:
        seen = request_id is not None and (participant_id, request_id) in self.room.served
        return self.get(key), self.room.participants.get(participant_id), seen

    def next_seq(self, key: SessionKey) -> int:
        if self.room.session.ended_at:
            raise SessionEnded()
        self.room.session.seq += 1
        return self.room.session.seq

    def commit(
        self,
        key: SessionKey,
        seq: int,
        write: Sequence[Operation],
        *,
        request: tuple[str, str] | None = None,
    ) -> None:
        room = self.room
        if request is not None and request in room.served:
            raise DuplicateRequest(request[1])
        if room.session.ended_at:
            raise SessionEnded()
        for op in write:  # every condition first: all of the write lands, or none of it
            match op:
                case ParticipantChange(before=before):
                    current = room.participants.get(before.participant_id)
                    if current is None or current.rev != before.rev:
                        raise StaleWrite("a participant changed")
                case CastVote(poll_id=poll_id, participant_id=voter):
                    if (poll_id, voter) in room.votes:
                        raise AlreadyVoted()
                    poll = room.polls.get(poll_id)
                    if poll is None or not poll.open:
                        raise PollClosed()
                case AddChatMessage() | OpenAttendance() | CloseAttendance() | PublishEvent():
                    pass
                case _:
                    raise NotImplementedError(type(op).__name__)
        for op in write:
            match op:
                case ParticipantChange(before=before, changes=changes):
                    room.participants[before.participant_id] = before.changed(changes, seq)
                case CastVote(poll_id=poll_id, participant_id=voter, choices=choices):
                    poll = room.polls[poll_id]
                    room.polls[poll_id] = replace(
                        poll,
                        counts=tuple(n + (i in choices) for i, n in enumerate(poll.counts)),
                        voters=poll.voters + 1,
                        version=poll.version + 1,
                    )
                    room.votes[(poll_id, voter)] = list(choices)
                case AddChatMessage(message=message):
                    room.chat.append(message)
        published = [op for op in write if isinstance(op, PublishEvent)]
        for n, op in enumerate(published):
            room.outbox.append(
                OutboxEvent(
                    key.meeting_id, key.session_id, seq, op.type, op.payload, op.audience, n=n
                )
            )
        if request is not None:
            room.served.add(request)


class MemoryParticipants:
    def __init__(self, room: Room) -> None:
        self.room = room

    def get(self, session: SessionKey, participant_id: str) -> Participant | None:
        return self.room.participants.get(participant_id)

    def all(self, session: SessionKey) -> list[Participant]:
        return list(self.room.participants.values())

    def recipients(self, session: SessionKey) -> list[Recipient]:
        return [
            Recipient(p.participant_id, p.status, p.role, p.connection_id)
            for p in self.room.participants.values()
        ]

    def create(self, participant: Participant) -> bool:
        if participant.participant_id in self.room.participants:
            return False
        self.room.participants[participant.participant_id] = participant
        return True

    def set_resume(
        self, session: SessionKey, participant_id: str, current: str, previous: str | None
    ) -> None:
        p = self.room.participants[participant_id]
        self.room.participants[participant_id] = replace(
            p, resume_hash=current, resume_previous_hash=previous
        )


class MemoryChat:
    def __init__(self, room: Room) -> None:
        self.room = room

    def all(self, session: SessionKey) -> list[ChatMessage]:
        return list(self.room.chat)

    def recent(
        self, session: SessionKey, limit: int = 100, room: str | None = None
    ) -> list[ChatMessage]:
        kept = [m for m in self.room.chat if room is None or m.private or m.room == room]
        return kept[-limit:]


class MemoryPolls:
    def __init__(self, room: Room) -> None:
        self.room = room

    def polls(self, session: SessionKey) -> list[Poll]:
        return sorted(self.room.polls.values(), key=lambda p: p.created_at)

    def get(self, session: SessionKey, poll_id: str) -> Poll | None:
        return self.room.polls.get(poll_id)

    def get_with_vote(
        self, session: SessionKey, poll_id: str, participant_id: str
    ) -> tuple[Poll | None, list[int] | None]:
        return self.room.polls.get(poll_id), self.room.votes.get((poll_id, participant_id))

    def choices_of(
        self, session: SessionKey, participant_id: str, poll_ids: list[str]
    ) -> dict[str, list[int]]:
        return {
            poll_id: choices
            for (poll_id, voter), choices in self.room.votes.items()
            if voter == participant_id and poll_id in poll_ids
        }


class NoQuestions:
    def questions(self, session: SessionKey) -> list[Question]:
        return []

    def get(self, session: SessionKey, question_id: str) -> Question | None:
        return None

    def get_with_upvote(
        self, session: SessionKey, question_id: str, participant_id: str
    ) -> tuple[Question | None, bool]:
        return None, False


class BlankWhiteboard:
    def cleared_at(self, session: SessionKey, room: str = "") -> int:
        return 0

    def strokes(
        self,
        session: SessionKey,
        *,
        after: int,
        before: int | None,
        budget: int,
        room: str = "",
    ) -> tuple[list[Stroke], bool]:
        return [], False

    def delete_before(self, session: SessionKey, seq: int, room: str = "") -> int:
        return 0


class NoBreakouts:
    def get(self, session: SessionKey) -> Breakouts:
        return Breakouts()

    def visits(self, session: SessionKey) -> list[dict[str, Any]]:
        return []


class MemoryConnections:
    def __init__(self) -> None:
        self.open: dict[str, Connection] = {}

    def put(self, connection: Connection) -> None:
        self.open[connection.connection_id] = connection

    def delete(self, connection_id: str) -> None:
        self.open.pop(connection_id, None)


class RecordingNotifier:
    """Every event posted, by connection; every connection reachable."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, dict[str, Any]]] = []
        self.closed: list[str] = []

    def post_many(self, deliveries: Iterable[tuple[str, str]]) -> list[str]:
        self.posted.extend((c, json.loads(message)) for c, message in deliveries)
        return []

    def post_sequences(self, sequences: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
        for connection_id, messages in sequences:
            self.post_many((connection_id, m) for m in messages)
        return []

    def disconnect(self, connection_id: str) -> None:
        self.closed.append(connection_id)


def deliver(room: Room, notifier: RecordingNotifier) -> None:
    """What the outbox's consumer does with the room's events (each delivered once)."""
    consumer = OutboxFanout(
        MemoryParticipants(room),
        notifier,
        outbox_message,
        on_gone=lambda key, gone, known: None,
        close=notifier.disconnect,
        read_image=lambda image: OutboxEvent.from_record(image),
    )
    records = [StreamRecord(str(i), e) for i, e in enumerate(room.outbox)]
    room.outbox.clear()
    assert consumer.deliver(records) == []


def _participant(pid: str, name: str, role: Role, connection_id: str) -> Participant:
    return Participant(
        "m1", "s1", pid, name, role, "admitted", connection_id=connection_id, place=1, rev=1
    )


@pytest.fixture
def room() -> Room:
    session = Session("m1", "s1", 0, "p_host", "Standup", "meeting", "u_host", False, 9, seq=1)
    room = Room(session)
    for p in (
        _participant("p_host", "Hana", "host", "c-host"),
        _participant("p_guest", "Gia", "attendee", "c-guest"),
    ):
        room.participants[p.participant_id] = p
    return room


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def service(room: Room, notifier: RecordingNotifier) -> SignalingService:
    return SignalingService(
        ActionContext(
            sessions=MemorySessions(room),
            participants=MemoryParticipants(room),
            chat=MemoryChat(room),
            polls=MemoryPolls(room),
            questions=NoQuestions(),
            whiteboard=BlankWhiteboard(),
            connections=MemoryConnections(),
            breakouts=NoBreakouts(),
            notifier=notifier,
            clock=lambda: NOW,
        )
    )


GUEST = Caller(JoinClaims("m1", "s1", "p_guest", "attendee", "Gia", None, 0), "c-guest")


def test_chat_is_kept_and_posted_to_everyone_admitted(
    service: SignalingService, room: Room, notifier: RecordingNotifier
) -> None:
    reply = service.handle(GUEST, Request("chat", "r-1", {"text": "hello"}))

    assert reply == {"message_id": 2}
    sent = ChatMessage(2, "p_guest", "Gia", None, None, "hello", int(NOW * 1000))
    assert room.chat == [sent]
    assert ("p_guest", "r-1") in room.served
    assert notifier.posted == []  # the reply does not wait for the fan-out
    assert [(e.type, e.seq) for e in room.outbox] == [(EventName.CHAT_MESSAGE, 2)]
    deliver(room, notifier)
    assert sorted(c for c, _ in notifier.posted) == ["c-guest", "c-host"]
    for _, event in notifier.posted:
        assert event == {
            "type": "event",
            "event": EventName.CHAT_MESSAGE,
            "seq": 2,
            "event_id": "2",
            "meeting_id": "m1",
            "data": {"message": sent.public()},
        }


def test_a_replayed_chat_changes_nothing(
    service: SignalingService, room: Room, notifier: RecordingNotifier
) -> None:
    service.handle(GUEST, Request("chat", "r-1", {"text": "hello"}))
    with pytest.raises(DuplicateRequestError, match="already used"):
        service.handle(GUEST, Request("chat", "r-1", {"text": "hello"}))
    assert len(room.chat) == 1 and len(room.outbox) == 1


def test_a_vote_is_counted_once_and_the_counts_are_posted(
    service: SignalingService, room: Room, notifier: RecordingNotifier
) -> None:
    room.polls["pl_1"] = Poll(
        "pl_1", "Lunch?", ("yes", "no"), False, "open", (0, 0), 0, 0, "p_host", 1
    )

    reply = service.handle(GUEST, Request("poll_vote", "r-1", {"poll_id": "pl_1", "choices": [1]}))

    assert reply["poll"]["counts"] == [0, 1] and reply["poll"]["my_choices"] == [1]
    assert room.votes == {("pl_1", "p_guest"): [1]}
    assert room.polls["pl_1"].voters == 1 and room.polls["pl_1"].version == 2
    deliver(room, notifier)
    assert sorted(c for c, _ in notifier.posted) == ["c-guest", "c-host"]
    for _, event in notifier.posted:
        assert event["event"] == EventName.POLL_UPDATED and event["seq"] == 2
        assert event["data"]["poll"]["counts"] == [0, 1]
        assert "my_choices" not in event["data"]["poll"]  # nobody's choices go out
    with pytest.raises(AlreadyVoted):
        service.handle(GUEST, Request("poll_vote", "r-2", {"poll_id": "pl_1", "choices": [0]}))
    assert room.polls["pl_1"].counts == (0, 1)
