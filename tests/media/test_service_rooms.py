"""RoomDirectory's bookkeeping, and the front's routing helpers, without any network."""

from __future__ import annotations

import jwt
import pytest

from media_fleet.service.rooms import NoSuchSubscription, RoomDirectory
from media_fleet.service.routing import unverified_meeting_id, worker_for
from tests.media.test_service_control_api import StandInRoom

EXPECTED_TWO_WORKERS = [1, 1, 0, 0, 0, 0]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def directory() -> tuple[RoomDirectory, list[StandInRoom], Clock]:
    created: list[StandInRoom] = []
    clock = Clock()

    def factory(meeting_id: str, *, video_slots: int | None = None) -> StandInRoom:
        created.append(StandInRoom(meeting_id))
        return created[-1]

    return RoomDirectory(factory, monotonic=clock), created, clock


async def test_one_room_per_meeting_closed_when_the_last_participant_leaves() -> None:
    rooms, created, _ = directory()
    await rooms.publish("m-1", "alice", "v=0")
    await rooms.subscribe("m-1", "bob")
    await rooms.subscribe("m-2", "carol")
    assert rooms.meetings() == ["m-1", "m-2"] and len(created) == 2
    assert (rooms.sessions(), rooms.forwarded_streams()) == (3, 6)
    await rooms.leave("m-1", "alice")
    assert rooms.meetings() == ["m-1", "m-2"] and not created[0].closed
    await rooms.leave("m-1", "bob")
    assert rooms.meetings() == ["m-2"] and created[0].closed
    await rooms.tell_clients_to_move()
    assert created[1].moved
    await rooms.close_all()
    assert len(rooms) == 0 and created[1].closed


async def test_a_failed_first_request_closes_the_room_it_created() -> None:
    rooms, created, _ = directory()
    with pytest.raises(ValueError):
        await rooms.publish("m-1", "alice", "garbage")
    assert len(rooms) == 0 and created[0].closed
    with pytest.raises(NoSuchSubscription):
        await rooms.accept_answer("m-1", "alice", "v=0")
    assert len(created) == 1


async def test_a_failure_in_a_room_with_participants_keeps_the_room() -> None:
    rooms, created, _ = directory()
    await rooms.subscribe("m-1", "alice")
    with pytest.raises(ValueError):
        await rooms.publish("m-1", "bob", "garbage")
    assert rooms.meetings() == ["m-1"] and not created[0].closed


async def test_rooms_without_sessions_are_swept_after_the_grace_period() -> None:
    rooms, created, clock = directory()
    await rooms.subscribe("m-1", "alice")
    created[0].participants.clear()  # the client vanished; the room dropped its session
    assert await rooms.sweep_idle(grace_seconds=30) == 0  # first seen empty
    clock.now += 29
    assert await rooms.sweep_idle(grace_seconds=30) == 0
    clock.now += 2
    assert await rooms.sweep_idle(grace_seconds=30) == 1
    assert len(rooms) == 0 and created[0].closed


def test_a_meeting_always_maps_to_the_same_worker_and_meetings_spread() -> None:
    meetings = [f"meeting-{n}" for n in range(400)]
    first = [worker_for(m, 4) for m in meetings]
    assert first == [worker_for(m, 4) for m in meetings]
    assert all(0 <= w < 4 for w in first)
    assert min(first.count(w) for w in range(4)) > 60
    # sha256, not Python's hash() (salted per process): the front and a restarted front agree.
    assert [worker_for(f"meeting-{n}", 2) for n in range(6)] == EXPECTED_TWO_WORKERS
    with pytest.raises(ValueError):
        worker_for("m", 0)


def test_the_meeting_is_read_from_a_token_without_verifying_it() -> None:
    secret = "a forger's own secret, 32 bytes or more"
    token = jwt.encode({"mid": "m-7"}, secret, algorithm="HS256")
    assert unverified_meeting_id(token) == "m-7"
    assert unverified_meeting_id(jwt.encode({"mid": 5}, secret, algorithm="HS256")) is None
    assert unverified_meeting_id("not a token") is None
    assert unverified_meeting_id(None) is None
