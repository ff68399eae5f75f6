"""The meetings a worker hosts: meeting id -> forwarding room.

A room is created by the first request that needs it (a publish or a subscribe) and closed
when its last participant leaves, or at once when its meeting ends (`close_meeting`). A room
created for a request that then failed is closed at once, so an error never leaves an empty
room behind. Rooms whose clients vanished without a `leave` (a closed laptop) are closed by
`sweep_idle` after a grace period.

Everything here runs on the worker's one event loop, so plain counters need no lock; a room is
never closed while a request is still inside it (`in_flight`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from contracts.node_api import IceServer

if TYPE_CHECKING:
    from media_fleet.sfu.statistics import ForwardingStats

log = logging.getLogger(__name__)

T = TypeVar("T")

# A client that vanished leaves its sessions to aiortc's ICE consent timeout (about 30 s);
# a room with no session for this long is closed even if nobody said `leave`.
IDLE_GRACE_SECONDS = 60.0


class Room(Protocol):
    """What the directory needs of a forwarding room (`media_fleet.sfu.room.MeetingRoom`)."""

    async def publish(
        self, participant_id: str, offer_sdp: str, ice_servers: Sequence[IceServer] = ()
    ) -> str: ...
    async def subscribe(
        self, participant_id: str, ice_servers: Sequence[IceServer] = ()
    ) -> str: ...
    async def accept_answer(self, participant_id: str, answer_sdp: str) -> None: ...
    async def leave(self, participant_id: str) -> None: ...
    async def tell_clients_to_move(self) -> None: ...
    async def close(self) -> None: ...
    def sessions(self) -> int: ...
    def forwarded_streams(self) -> int: ...
    def packets_per_second(self) -> float: ...


class RoomFactory(Protocol):
    """Makes the room for a meeting; `video_slots` is the meeting's own last-N, if it has one."""

    def __call__(self, meeting_id: str, *, video_slots: int | None = None) -> Room: ...


class NoSuchSubscription(LookupError):
    """An answer for a meeting this worker does not host."""


class AdmissionWithdrawn(Exception):
    """The participant's right to the room was withdrawn (revoked) while the room worked on
    their request; what the request made was undone."""


# Asked once a room has done a request's work: is the participant still admitted? A revocation
# may land while a publish waits for ICE gathering, and must not leave a connection behind.
StillAdmitted = Callable[[], bool]


def meeting_room_factory(
    *,
    video_slots: int,
    audio_slots: int,
    announced_host: str | None,
    forwarding: ForwardingStats | None = None,
) -> RoomFactory:
    default_video_slots = video_slots
    """Rooms with the node's settings."""

    def create(meeting_id: str, *, video_slots: int | None = None) -> Room:
        # Imported on first use: aiortc is heavy, and nothing before a verified request needs it.
        from media_fleet.sfu.room import MeetingRoom

        return MeetingRoom(
            meeting_id,
            video_slots=video_slots or default_video_slots,
            audio_slots=audio_slots,
            announced_host=announced_host,
            forwarding=forwarding,
        )

    return create


@dataclass
class _Hosted:
    room: Room
    participants: set[str] = field(default_factory=set)
    in_flight: int = 0
    empty_since: float | None = None


class RoomDirectory:
    def __init__(
        self, factory: RoomFactory, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._factory = factory
        self._monotonic = monotonic
        self._hosted: dict[str, _Hosted] = {}

    def meetings(self) -> list[str]:
        return sorted(self._hosted)

    def __len__(self) -> int:
        return len(self._hosted)

    # -- requests -------------------------------------------------------------------------

    async def publish(
        self,
        meeting_id: str,
        participant_id: str,
        offer_sdp: str,
        video_slots: int | None = None,
        *,
        still_admitted: StillAdmitted | None = None,
        ice_servers: Sequence[IceServer] = (),
    ) -> str:
        return await self._in_room(
            meeting_id,
            participant_id,
            lambda room: room.publish(participant_id, offer_sdp, ice_servers),
            video_slots,
            still_admitted=still_admitted,
        )

    async def subscribe(
        self,
        meeting_id: str,
        participant_id: str,
        video_slots: int | None = None,
        *,
        still_admitted: StillAdmitted | None = None,
        ice_servers: Sequence[IceServer] = (),
    ) -> str:
        return await self._in_room(
            meeting_id,
            participant_id,
            lambda room: room.subscribe(participant_id, ice_servers),
            video_slots,
            still_admitted=still_admitted,
        )

    async def accept_answer(
        self,
        meeting_id: str,
        participant_id: str,
        answer_sdp: str,
        *,
        still_admitted: StillAdmitted | None = None,
    ) -> None:
        hosted = self._hosted.get(meeting_id)
        if hosted is None or participant_id not in hosted.participants:
            # Never creates a room: an answer only makes sense after this node's offer.
            raise NoSuchSubscription("no subscription of this participant on this node")
        try:
            await self._in_room(
                meeting_id,
                participant_id,
                lambda room: room.accept_answer(participant_id, answer_sdp),
                still_admitted=still_admitted,
            )
        except KeyError as exc:  # MeetingRoom's word for "published, but never subscribed"
            raise NoSuchSubscription("no subscription of this participant on this node") from exc

    async def leave(self, meeting_id: str, participant_id: str) -> None:
        hosted = self._hosted.get(meeting_id)
        if hosted is None:
            return  # idempotent: leaving twice, or after the room closed, is fine
        hosted.in_flight += 1
        try:
            await hosted.room.leave(participant_id)
        finally:
            hosted.participants.discard(participant_id)
            hosted.in_flight -= 1
            if not hosted.participants:
                await self._close_if_unused(meeting_id, hosted)

    async def close_meeting(self, meeting_id: str) -> bool:
        """Close the meeting's room now, with every connection in it (the meeting ended).
        A request still inside it finishes against the closed room. True if a room was open."""
        hosted = self._hosted.pop(meeting_id, None)
        if hosted is None:
            return False
        await _close(meeting_id, hosted.room)
        return True

    async def _in_room(
        self,
        meeting_id: str,
        participant_id: str,
        use: Callable[[Room], Awaitable[T]],
        video_slots: int | None = None,
        *,
        still_admitted: StillAdmitted | None = None,
    ) -> T:
        hosted = self._hosted.get(meeting_id)
        if hosted is None:
            room = self._factory(meeting_id, video_slots=video_slots)
            hosted = self._hosted[meeting_id] = _Hosted(room)
        hosted.in_flight += 1
        try:
            result = await use(hosted.room)
        except BaseException:
            hosted.in_flight -= 1
            if not hosted.participants:
                await self._close_if_unused(meeting_id, hosted)
            raise
        hosted.in_flight -= 1
        if still_admitted is not None and not still_admitted():
            # Undone on this very room: a meeting's end may have closed and dropped it
            # meanwhile, and what the request made there must not live on.
            await _leave(meeting_id, hosted.room, participant_id)
            hosted.participants.discard(participant_id)
            if not hosted.participants:
                await self._close_if_unused(meeting_id, hosted)
            raise AdmissionWithdrawn("the participant's media was revoked during the request")
        hosted.participants.add(participant_id)
        hosted.empty_since = None
        return result

    async def _close_if_unused(self, meeting_id: str, hosted: _Hosted) -> None:
        if hosted.in_flight or self._hosted.get(meeting_id) is not hosted:
            return
        # Out of the map first: a request arriving during close() gets a fresh room.
        del self._hosted[meeting_id]
        await _close(meeting_id, hosted.room)

    # -- node-wide ------------------------------------------------------------------------

    async def sweep_idle(self, grace_seconds: float = IDLE_GRACE_SECONDS) -> int:
        """Close rooms that have had no session for `grace_seconds`; returns how many."""
        now = self._monotonic()
        closed = 0
        for meeting_id, hosted in list(self._hosted.items()):
            if hosted.in_flight or hosted.room.sessions() > 0:
                hosted.empty_since = None
            elif hosted.empty_since is None:
                hosted.empty_since = now
            elif now - hosted.empty_since >= grace_seconds:
                del self._hosted[meeting_id]
                await _close(meeting_id, hosted.room)
                closed += 1
        return closed

    async def tell_clients_to_move(self) -> None:
        for meeting_id, hosted in list(self._hosted.items()):
            try:
                await hosted.room.tell_clients_to_move()
            except Exception:
                # One broken room must not keep the others' clients from moving.
                log.exception("could not tell the clients of meeting %s to move", meeting_id)

    async def close_all(self) -> None:
        hosted_rooms = list(self._hosted.items())
        self._hosted.clear()
        for meeting_id, hosted in hosted_rooms:
            await _close(meeting_id, hosted.room)

    def sessions(self) -> int:
        return sum(h.room.sessions() for h in self._hosted.values())

    def forwarded_streams(self) -> int:
        return sum(h.room.forwarded_streams() for h in self._hosted.values())

    def packets_per_second(self) -> float:
        return sum(h.room.packets_per_second() for h in self._hosted.values())


async def _leave(meeting_id: str, room: Room, participant_id: str) -> None:
    try:
        await room.leave(participant_id)
    except Exception:
        log.exception("dropping %s from the room of meeting %s failed", participant_id, meeting_id)


async def _close(meeting_id: str, room: Room) -> None:
    try:
        await room.close()
    except Exception:
        log.exception("closing the room of meeting %s failed", meeting_id)
