"""A participant: one person in one session of a meeting."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

Role = Literal["host", "cohost", "panelist", "attendee"]
ROLES: tuple[Role, ...] = ("host", "cohost", "panelist", "attendee")
Status = Literal["joining", "waiting", "admitted", "denied", "removed"]

# How long a participant whose connection dropped keeps their place before they count as
# gone: others see them "reconnecting" meanwhile, and a reload within it comes back silently.
RECONNECT_WINDOW_SECONDS = 120


@dataclass
class Participant:
    meeting_id: str
    session_id: str
    # A person's id, the same in every session: the account's user id, or the guest's id
    # (derived from the secret guest key their browser keeps).
    participant_id: str
    name: str
    role: Role
    status: Status
    user_id: str | None = None
    connection_id: str | None = None
    muted: bool = True
    camera: bool = False
    hand_raised_at: int = 0
    screen: bool = False
    place: int = 0
    joined_at: int = 0
    left_at: int = 0
    # When the connection dropped without a `leave` (ms); 0 while connected or after leaving.
    dropped_at: int = 0
    # Start (ms) of the attendance interval in progress; 0 when none.
    session_at: int = 0
    # Removed, but may ask again through the waiting room (the moderator's choice).
    may_return: bool = False
    # The breakout room they are in ("" for the main room; `townhall.model.breakout`).
    room: str = ""
    rev: int = 0
    resume_hash: str | None = None
    resume_previous_hash: str | None = None
    created_at: int = 0

    @property
    def connected(self) -> bool:
        return self.connection_id is not None

    def reconnecting_until(self) -> int:
        """Until when (ms) others should show this participant as reconnecting; 0 if not."""
        if self.connected or not self.dropped_at or self.status != "admitted":
            return 0
        return self.dropped_at + RECONNECT_WINDOW_SECONDS * 1000

    def changed(self, changes: dict[str, Any], seq: int) -> Participant:
        """This participant once `changes` are committed by the action numbered `seq`."""
        return replace(self, **changes, rev=seq)

    def public(self) -> dict[str, Any]:
        """What other participants may see."""
        return {
            "participant_id": self.participant_id,
            "name": self.name,
            "role": self.role,
            "status": self.status,
            "connected": self.connected,
            "reconnecting_until": self.reconnecting_until(),
            "muted": self.muted,
            "camera": self.camera,
            "hand": self.hand_raised_at > 0,
            "hand_raised_at": self.hand_raised_at,
            "screen": self.screen,
            "place": self.place,
            "room": self.room,
            "rev": self.rev,
        }


@dataclass(frozen=True)
class Recipient:
    """The few fields a fan-out needs about a participant (a projected read)."""

    participant_id: str
    status: Status
    role: Role
    connection_id: str | None
    room: str = ""
