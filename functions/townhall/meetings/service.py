"""Scheduling: what hosts do with their meetings: create, edit, delete, list them with their
next occurrences, the invite, and the sessions each meeting has run (joining is
`townhall.meetings.joining`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from townhall import clock
from townhall.auth.accounts import clean_name, normalize_email
from townhall.auth.claims import AccessClaims
from townhall.errors import Conflict, InvalidInput, NotFound
from townhall.ids import new_meeting_id
from townhall.meetings import ics
from townhall.meetings.liveness import Liveness
from townhall.model.meeting import MAX_COHOSTS, MAX_VIDEO_SLOTS, Meeting
from townhall.model.schedule import Occurrence, Schedule
from townhall.model.session import MeetingKind, Session, SessionKey
from townhall.store.meetings import MeetingRecords
from townhall.store.participants import ParticipantRecords, ParticipantStore
from townhall.store.sessions import SessionRecords, SessionRow


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
    allow_before_host: bool = False
    # Account emails of the co-hosts (see townhall.meetings.joining, "Host side").
    cohosts: Sequence[str] = ()


def usable(meeting: Meeting) -> Meeting:
    """The meeting, if its stored item can be read and its schedule computed; else a clear
    409 (an item written before validation, or by hand) that tells the host to edit or
    delete it."""
    if meeting.damage is not None:
        raise Conflict(f"{meeting.damage}; edit or delete it")
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


def _clean_cohosts(cohosts: Sequence[str], host_email: str) -> tuple[str, ...]:
    """The co-host list as stored: valid account emails, normalized (lower case), each once,
    at most MAX_COHOSTS, never the host's own. Whether an account has the email is not
    checked (that would tell anyone which emails have accounts): one that signs up later
    with it is a co-host from then on."""
    if isinstance(cohosts, str) or not isinstance(cohosts, Sequence):
        raise InvalidInput("cohosts must be a list of email addresses")
    if len(cohosts) > MAX_COHOSTS:
        raise InvalidInput(f"cohosts lists at most {MAX_COHOSTS} email addresses")
    host = host_email.strip().lower()
    cleaned: dict[str, None] = {}
    for index, entry in enumerate(cohosts):  # at most MAX_COHOSTS
        if not isinstance(entry, str) or not entry.strip().isprintable():
            raise InvalidInput(f"cohosts[{index}] is not a valid email address")
        try:
            email = normalize_email(entry)
        except InvalidInput:
            raise InvalidInput(f"cohosts[{index}] is not a valid email address") from None
        if email == host:
            raise InvalidInput(f"cohosts[{index}] is your own email: you host this meeting")
        cleaned[email] = None
    return tuple(cleaned)


class MeetingService:
    def __init__(
        self,
        store: MeetingRecords,
        sessions: SessionRecords,
        participants: ParticipantRecords | None = None,
    ) -> None:
        self._store = store
        self._sessions = sessions
        self._liveness = Liveness(
            sessions, participants if participants is not None else ParticipantStore(sessions.table)
        )

    # -- hosts -----------------------------------------------------------------------------

    def create(self, host: AccessClaims, draft: MeetingDraft) -> Meeting:
        meeting = self._build(host, new_meeting_id(), draft, created_at=int(clock.now()))
        self._store.create_meeting(meeting)
        return meeting

    def update(self, host: AccessClaims, meeting_id: str, draft: MeetingDraft) -> Meeting:
        """Replace what the host edits; this also repairs a damaged stored item."""
        current = self.owned(host, meeting_id)
        created_at = current.created_at
        if "created_at" in current.damaged:
            created_at = int(clock.now())
        updated = self._build(host, meeting_id, draft, created_at=created_at)
        updated.live_session_id = current.live_session_id  # not the edit's to change
        updated.last_session_at = current.last_session_at
        if not self._store.save_meeting(
            updated, expected_updated_at=current.updated_at, repairs=current.damaged
        ):
            raise Conflict("the meeting changed meanwhile; fetch it and try again")
        return updated

    def delete(self, host: AccessClaims, meeting_id: str) -> None:
        """Delete the meeting and every session's data; not while a session runs (one
        everybody dropped out of is ended first)."""
        meeting = self.current(self.owned(host, meeting_id))
        if meeting.live:
            raise Conflict("a session of this meeting is running: end it first")
        self._store.delete_meeting(meeting_id)

    def owned(self, host: AccessClaims, meeting_id: str) -> Meeting:
        meeting = self._store.get_meeting(meeting_id)
        if meeting is None or meeting.host_id != host.user_id:
            # The same answer for "not yours" and "does not exist": ids are not enumerable.
            raise NotFound("meeting not found")
        return meeting

    def current(self, meeting: Meeting) -> Meeting:
        """The meeting with its live marker as it really is: a session everybody dropped out
        of (abandoned) is ended here, as the next join would (`townhall.meetings.liveness`)."""
        return self._liveness.current(meeting)

    def listing(
        self, host: AccessClaims, now: datetime, per_meeting: int = 3
    ) -> list[tuple[Meeting, list[Occurrence]]]:
        """Every meeting of the host with its next occurrences: those running now first, then
        what is coming, soonest first, then the rest (past one-offs, with their sessions), the
        most recently run first; a meeting whose stored schedule cannot be read comes with no
        occurrences (`schedule.problem` says why), so the host can still fix or delete it.
        Each costs a bounded expansion (schedule.py)."""
        live: list[tuple[Meeting, list[Occurrence]]] = []
        coming: list[tuple[Meeting, list[Occurrence]]] = []
        rest: list[tuple[Meeting, list[Occurrence]]] = []
        for stored in self._store.meetings_of_host(host.user_id):
            meeting = self.current(stored)
            occurrences = meeting.schedule.occurrences_after(now, per_meeting)
            if meeting.live:
                live.append((meeting, occurrences))
            elif occurrences:
                coming.append((meeting, occurrences))
            else:
                rest.append((meeting, occurrences))
        coming.sort(key=lambda pair: pair[1][0].start_utc)
        rest.sort(key=lambda pair: -pair[0].last_session_at)
        return live + coming + rest

    def sessions(
        self, host: AccessClaims, meeting_id: str, limit: int, cursor: str | None
    ) -> tuple[list[SessionRow], str | None]:
        """The meeting's sessions, newest first, a page at a time (an abandoned one ended
        first, so it is not listed as running)."""
        self.current(self.owned(host, meeting_id))
        return self._sessions.past(meeting_id, limit, cursor)

    def session(self, host: AccessClaims, meeting_id: str, session_id: str | None) -> Session:
        """One session of the host's meeting; None names the latest (running or not)."""
        self.owned(host, meeting_id)
        if session_id is None:
            rows, _ = self._sessions.past(meeting_id, 1)
            if not rows:
                raise NotFound("this meeting has not run yet")
            session_id = rows[0].session_id
        found = self._sessions.get(SessionKey(meeting_id, session_id))
        if found is None:
            raise NotFound("session not found")
        return found

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
            now=clock.utc_now(),
            sequence=max(0, meeting.updated_at - meeting.created_at),
        )

    def _build(
        self, host: AccessClaims, meeting_id: str, draft: MeetingDraft, created_at: int
    ) -> Meeting:
        """The meeting a draft describes, or InvalidInput before anything is written."""
        if draft.kind not in ("meeting", "webinar"):
            raise InvalidInput("kind must be 'meeting' or 'webinar'")
        if not 1 <= draft.video_slots <= MAX_VIDEO_SLOTS:
            raise InvalidInput(f"video_slots must be 1 to {MAX_VIDEO_SLOTS}")
        schedule = Schedule.parse(draft.start, draft.timezone, draft.duration_minutes, draft.rrule)
        cohosts = _clean_cohosts(draft.cohosts, host.email)
        return Meeting(
            meeting_id=meeting_id,
            host_id=host.user_id,
            title=clean_name(draft.title, "title", 200),
            kind=draft.kind,
            schedule=schedule,
            passcode=_clean_passcode(draft.passcode),
            waiting_room=draft.waiting_room,
            created_at=created_at,
            updated_at=max(int(clock.now()), created_at),
            video_slots=draft.video_slots,
            allow_before_host=draft.allow_before_host,
            cohosts=cohosts,
        )

    # -- anyone with the link ----------------------------------------------------------------

    def public_info(self, meeting_id: str) -> Meeting:
        meeting = self._store.get_meeting(meeting_id)
        if meeting is None:
            raise NotFound("meeting not found")
        return self.current(meeting)
