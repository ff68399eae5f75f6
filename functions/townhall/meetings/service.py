"""Scheduling and joining: what hosts do before a meeting, and how anyone gets in.

Hosts create, edit and delete meetings and list what is coming up. Anyone with the link joins
with a display name (and the passcode, if there is one) and receives a join token scoped to one
meeting and one role, plus a resume token that lets the same participant reconnect later with
their role and place.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from townhall.auth.accounts import clean_name
from townhall.auth.tokens import AccessClaims, Role, TokenService, new_opaque_secret
from townhall.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound, Unauthenticated
from townhall.meetings import ics
from townhall.meetings.schedule import Occurrence, Schedule
from townhall.store.meetings import Meeting, MeetingStore, Participant

MeetingKind = Literal["meeting", "webinar"]
MAX_VIDEO_SLOTS = 25
_ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alikes: people read links aloud


@dataclass(frozen=True)
class MeetingDraft:
    title: str
    start: str
    timezone: str
    duration_minutes: int
    rrule: str | None = None
    passcode: str | None = None
    waiting_room: bool = False
    kind: MeetingKind = "meeting"
    video_slots: int = 9


@dataclass(frozen=True)
class JoinGrant:
    meeting_id: str
    participant_id: str
    role: Role
    name: str
    join_token: str
    expires_at: int
    resume_token: str


def new_meeting_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))


def usable(meeting: Meeting) -> Meeting:
    """The meeting, if its stored schedule can be computed; else a clear 409 (an item written
    before validation, or by hand) that tells the host to edit or delete it."""
    problem = meeting.schedule.problem
    if problem is not None:
        raise Conflict(
            f"this meeting's stored schedule is not valid ({problem}); edit or delete it"
        )
    return meeting


def _clean_passcode(passcode: str | None) -> str | None:
    if passcode is None or passcode == "":
        return None
    if not 4 <= len(passcode) <= 32 or not passcode.isprintable() or passcode.strip() != passcode:
        raise InvalidInput("passcode must be 4 to 32 printable characters")
    return passcode


class MeetingService:
    def __init__(self, store: MeetingStore, tokens: TokenService) -> None:
        self._store = store
        self._tokens = tokens

    # -- hosts -----------------------------------------------------------------------------

    def create(self, host: AccessClaims, draft: MeetingDraft) -> Meeting:
        meeting = self._build(host.user_id, new_meeting_id(), draft, created_at=int(time.time()))
        self._store.create_meeting(meeting)
        return meeting

    def update(self, host: AccessClaims, meeting_id: str, draft: MeetingDraft) -> Meeting:
        current = self.owned(host, meeting_id)
        if current.ended_at:
            raise Gone("the meeting has ended")
        updated = self._build(host.user_id, meeting_id, draft, created_at=current.created_at)
        updated.locked = current.locked
        if not self._store.save_meeting(updated, expected_updated_at=current.updated_at):
            raise Conflict("the meeting changed meanwhile; fetch it and try again")
        return updated

    def delete(self, host: AccessClaims, meeting_id: str) -> None:
        self.owned(host, meeting_id)
        self._store.delete_meeting(meeting_id)

    def owned(self, host: AccessClaims, meeting_id: str) -> Meeting:
        meeting = self._store.get_meeting(meeting_id)
        if meeting is None or meeting.host_id != host.user_id:
            # The same answer for "not yours" and "does not exist": ids are not enumerable.
            raise NotFound("meeting not found")
        return meeting

    def upcoming(
        self, host: AccessClaims, now: datetime, per_meeting: int = 3
    ) -> list[tuple[Meeting, list[Occurrence]]]:
        """The host's meetings that are still to come, soonest first, then those whose stored
        schedule cannot be read (no occurrences; `schedule.problem` says why), so the host
        can still see, fix or delete them. Each costs a bounded expansion (schedule.py)."""
        result: list[tuple[Meeting, list[Occurrence]]] = []
        broken: list[tuple[Meeting, list[Occurrence]]] = []
        for meeting in self._store.meetings_of_host(host.user_id):
            if meeting.ended_at and not meeting.schedule.rrule:
                continue
            if meeting.schedule.problem is not None:
                broken.append((meeting, []))
                continue
            occurrences = meeting.schedule.occurrences_after(now, per_meeting)
            if occurrences:
                result.append((meeting, occurrences))
        result.sort(key=lambda pair: pair[1][0].start_utc)
        return result + broken

    def invite(self, meeting: Meeting, join_url: str) -> str:
        usable(meeting)
        lines = [f"Join: {join_url}"]
        if meeting.passcode:
            lines.append(f"Passcode: {meeting.passcode}")
        return ics.render_invite(
            uid=f"{meeting.meeting_id}@townhall",
            title=meeting.title,
            description="\n".join(lines),
            url=join_url,
            schedule=meeting.schedule,
            created=datetime.fromtimestamp(meeting.created_at, UTC),
            now=datetime.now(UTC),
            sequence=max(0, meeting.updated_at - meeting.created_at),
        )

    def _build(
        self, host_id: str, meeting_id: str, draft: MeetingDraft, created_at: int
    ) -> Meeting:
        if draft.kind not in ("meeting", "webinar"):
            raise InvalidInput("kind must be 'meeting' or 'webinar'")
        if not 1 <= draft.video_slots <= MAX_VIDEO_SLOTS:
            raise InvalidInput(f"video_slots must be 1 to {MAX_VIDEO_SLOTS}")
        schedule = Schedule.parse(draft.start, draft.timezone, draft.duration_minutes, draft.rrule)
        return Meeting(
            meeting_id=meeting_id,
            host_id=host_id,
            title=clean_name(draft.title, "title", 200),
            kind=draft.kind,
            schedule=schedule,
            passcode=_clean_passcode(draft.passcode),
            waiting_room=draft.waiting_room,
            created_at=created_at,
            updated_at=max(int(time.time()), created_at),
            video_slots=draft.video_slots,
        )

    # -- anyone with the link ----------------------------------------------------------------

    def public_info(self, meeting_id: str) -> Meeting:
        meeting = self._store.get_meeting(meeting_id)
        if meeting is None:
            raise NotFound("meeting not found")
        return meeting

    def join(
        self,
        meeting_id: str,
        display_name: str,
        passcode: str | None,
        account: AccessClaims | None,
    ) -> JoinGrant:
        meeting = self.public_info(meeting_id)
        if meeting.ended_at:
            raise Gone("the meeting has ended")
        name = clean_name(display_name, "display_name")
        is_host = account is not None and account.user_id == meeting.host_id
        if not is_host:
            if meeting.passcode and not hmac.compare_digest(
                (passcode or "").encode(), meeting.passcode.encode()
            ):
                raise Forbidden("wrong passcode")
            if meeting.locked:
                raise Forbidden("the meeting is locked")
        role: Role = "host" if is_host else "attendee"
        # Signed-in people are one participant across devices and reconnects; guests get a
        # fresh id per join and keep it through the resume token.
        participant_id = account.user_id if account else "p_" + secrets.token_hex(8)
        existing = self._store.get_participant(meeting_id, participant_id)
        if existing is not None:
            if existing.status in ("removed", "denied"):
                raise Forbidden(f"you were {existing.status} from this meeting")
            role = existing.role if not is_host else "host"
            name = existing.name if existing.status == "admitted" else name
        else:
            self._store.create_participant(
                Participant(
                    meeting_id=meeting_id,
                    participant_id=participant_id,
                    name=name,
                    role=role,
                    status="joining",
                    user_id=account.user_id if account else None,
                )
            )
        return self._grant(
            meeting, participant_id, role, name, account.user_id if account else None
        )

    def rejoin(self, meeting_id: str, participant_id: str, resume_token: str) -> JoinGrant:
        meeting = self.public_info(meeting_id)
        if meeting.ended_at:
            raise Gone("the meeting has ended")
        participant = self._store.get_participant(meeting_id, participant_id)
        if (
            participant is None
            or not participant.resume_hash
            or not hmac.compare_digest(participant.resume_hash, _hash(resume_token))
        ):
            raise Unauthenticated("resume token is not valid for this participant")
        if participant.status in ("removed", "denied"):
            raise Forbidden(f"you were {participant.status} from this meeting")
        return self._grant(
            meeting, participant_id, participant.role, participant.name, participant.user_id
        )

    def _grant(
        self, meeting: Meeting, participant_id: str, role: Role, name: str, user_id: str | None
    ) -> JoinGrant:
        token, expires_at = self._tokens.issue_join(
            meeting.meeting_id, participant_id, role, name, user_id
        )
        resume = new_opaque_secret()
        self._store.set_resume_hash(meeting.meeting_id, participant_id, _hash(resume))
        return JoinGrant(meeting.meeting_id, participant_id, role, name, token, expires_at, resume)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
