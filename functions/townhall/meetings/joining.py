"""Getting into a session: the join (through the invite link), the lobby before a session
starts, and the rejoin that brings a dropped or reloaded page back as the same participant.

Identity. A signed-in person is their account. A guest is a **guest identity**: a random
secret the browser keeps in `localStorage` (`guest_key`, shared by every tab of that profile)
and sends with each join; the participant id is derived from it, so the same guest is the
same participant over every join of a session (attendance counts them once, and a removal
sticks: a new tab or the link again finds the removed participant). A guest who clears their
storage is a new guest; the waiting room and the lock still leave it to the host.

Sessions. A host's join starts a session when none runs; a guest's waits in the lobby
(`NotStarted`, HTTP 409 `not_started`) unless the meeting allows guests before the host
(never for a webinar). Someone already let into the running session is not asked for the
passcode again.

Resume. Each grant carries a resume token for `/rejoin`, stored only as a hash and rotated on
each use. The next token is derived from the one presented (HMAC with a key only the control
plane holds), and the previous one stays accepted, so a `/rejoin` whose answer was lost and
is sent again gets the very same answer.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from townhall import clock
from townhall.auth.accounts import clean_name
from townhall.auth.claims import AccessClaims
from townhall.auth.tokens import TokenService
from townhall.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound, Unauthenticated
from townhall.ids import new_session_id
from townhall.model.meeting import Meeting
from townhall.model.participant import RECONNECT_WINDOW_SECONDS, Participant, Role
from townhall.model.session import Session
from townhall.store.meetings import MeetingRecords
from townhall.store.participants import ParticipantRecords
from townhall.store.sessions import SessionAlreadyLive, SessionRecords

GUEST_KEY = re.compile(r"[A-Za-z0-9_-]{22,128}")
# Rounds of "no session runs: start one" lost to another join starting one at that moment.
START_ATTEMPTS = 3


class NotStarted(Conflict):
    """No session runs and this person may not start one: the lobby."""

    code = "not_started"


@dataclass(frozen=True)
class JoinRequest:
    display_name: str | None
    passcode: str | None
    guest_key: str | None


@dataclass(frozen=True)
class JoinGrant:
    meeting_id: str
    session_id: str
    participant_id: str
    role: Role
    name: str
    join_token: str
    expires_at: int
    resume_token: str


def guest_participant_id(guest_key: str) -> str:
    """The participant id of a guest identity: one-way, so the id others see in the roster
    cannot be turned back into the secret that proves it."""
    if not GUEST_KEY.fullmatch(guest_key):
        raise InvalidInput("guest_key must be 22 to 128 of [A-Za-z0-9_-]")
    return "g_" + hashlib.sha256(f"townhall-guest:{guest_key}".encode()).hexdigest()[:24]


class Joining:
    def __init__(
        self,
        meetings: MeetingRecords,
        sessions: SessionRecords,
        participants: ParticipantRecords,
        tokens: TokenService,
    ) -> None:
        self._meetings = meetings
        self._sessions = sessions
        self._participants = participants
        self._tokens = tokens

    def identity(self, request: JoinRequest, account: AccessClaims | None) -> str:
        """Who is joining: the account, else the guest identity (required for guests)."""
        if account is not None:
            return account.user_id
        if request.guest_key is None:
            raise InvalidInput("a guest joins with a guest_key (a random secret the browser keeps)")
        return guest_participant_id(request.guest_key)

    def join(
        self, meeting_id: str, request: JoinRequest, account: AccessClaims | None
    ) -> JoinGrant:
        meeting = self._meeting(meeting_id)
        participant_id = self.identity(request, account)
        is_host = account is not None and account.user_id == meeting.host_id
        session = self._live(meeting)
        existing = self._participants.get(session.key, participant_id) if session else None
        if not is_host and not _was_let_in(existing):
            _check_passcode(meeting, request.passcode)
        if session is None:
            if not (is_host or meeting.guests_may_start):
                raise NotStarted("the host has not started this meeting yet")
            session = self._start(meeting, participant_id)
            existing = self._participants.get(session.key, participant_id)
        if existing is not None:
            _check_may_return(existing)
        if session.locked and not is_host and not _was_let_in(existing):
            raise Forbidden("the meeting is locked")
        if existing is None:
            existing = self._new_participant(session, participant_id, request, account, is_host)
        role: Role = "host" if is_host else existing.role
        return self._grant(session, existing, role, rotate_from=None)

    def rejoin(
        self, meeting_id: str, session_id: str | None, participant_id: str, resume_token: str
    ) -> JoinGrant:
        meeting = self._meeting(meeting_id)
        session = self._live(meeting)
        if session is None or (session_id is not None and session.session_id != session_id):
            raise Gone("the meeting has ended")
        participant = self._participants.get(session.key, participant_id)
        presented = _hash(resume_token)
        if participant is None or not any(
            known and hmac.compare_digest(known, presented)
            for known in (participant.resume_hash, participant.resume_previous_hash)
        ):
            raise Unauthenticated("resume token is not valid for this participant")
        _check_may_return(participant)
        role: Role = participant.role
        return self._grant(session, participant, role, rotate_from=resume_token)

    # -- steps ---------------------------------------------------------------------------------

    def _meeting(self, meeting_id: str) -> Meeting:
        meeting = self._meetings.get_meeting(meeting_id)
        if meeting is None:
            raise NotFound("meeting not found")
        return meeting

    def _live(self, meeting: Meeting) -> Session | None:
        """The session running now; one everybody left without a `leave` (so nobody ended
        it) is ended here, and there is none."""
        if meeting.live_session_id is None:
            return None
        session = self._sessions.get(meeting.session_key(meeting.live_session_id))
        if session is None or not session.running:
            return None
        if self._abandoned(session):
            self._sessions.end(session, clock.now_ms())
            return None
        return session

    def _abandoned(self, session: Session) -> bool:
        """Nobody connected, nobody reconnecting, and nothing happened for the reconnect
        window (a session just started, whose host has not connected yet, is not)."""
        now_ms = clock.now_ms()
        quiet_since = now_ms - RECONNECT_WINDOW_SECONDS * 1000
        if session.started_at > quiet_since:
            return False
        for p in self._participants.all(session.key):
            last_seen = max(p.created_at * 1000, p.left_at * 1000, p.dropped_at)
            if p.connected or last_seen > quiet_since:
                return False
        return True

    def _start(self, meeting: Meeting, started_by: str) -> Session:
        for _ in range(START_ATTEMPTS):
            try:
                return self._sessions.start(meeting, new_session_id(), started_by)
            except SessionAlreadyLive:
                # Someone else started it a moment ago: join theirs.
                current = self._meetings.get_meeting(meeting.meeting_id)
                if current is None:
                    raise NotFound("meeting not found") from None
                session = self._live(current)
                if session is not None:
                    return session
        raise Conflict("the meeting is starting; try again")

    def _new_participant(
        self,
        session: Session,
        participant_id: str,
        request: JoinRequest,
        account: AccessClaims | None,
        is_host: bool,
    ) -> Participant:
        if request.display_name is None and account is not None:
            name = clean_name(account.name, "display_name")
        else:
            name = clean_name(request.display_name or "", "display_name")
        participant = Participant(
            meeting_id=session.meeting_id,
            session_id=session.session_id,
            participant_id=participant_id,
            name=name,
            role="host" if is_host else "attendee",
            status="joining",
            user_id=account.user_id if account else None,
            created_at=int(clock.now()),
        )
        if self._participants.create(participant):
            return participant
        # The same person joined from two places at once: the first write stands.
        found = self._participants.get(session.key, participant_id)
        if found is None:
            raise Conflict("could not join; try again")
        return found

    def _grant(
        self, session: Session, p: Participant, role: Role, *, rotate_from: str | None
    ) -> JoinGrant:
        token, expires_at = self._tokens.issue_join(
            session.meeting_id,
            p.participant_id,
            role,
            p.name,
            p.user_id,
            session_id=session.session_id,
        )
        if rotate_from is None:
            resume = self._tokens.new_resume_token()
            self._participants.set_resume(session.key, p.participant_id, _hash(resume), None)
        else:
            resume = self._tokens.next_resume_token(rotate_from)
            if p.resume_hash != _hash(resume):  # not already rotated by this very request
                self._participants.set_resume(
                    session.key, p.participant_id, _hash(resume), _hash(rotate_from)
                )
        return JoinGrant(
            session.meeting_id,
            session.session_id,
            p.participant_id,
            role,
            p.name,
            token,
            expires_at,
            resume,
        )


def _was_let_in(p: Participant | None) -> bool:
    """Already admitted into this session (they need not prove the passcode again)."""
    return p is not None and p.status == "admitted"


def _check_passcode(meeting: Meeting, passcode: str | None) -> None:
    if meeting.passcode and not hmac.compare_digest(
        (passcode or "").encode(), meeting.passcode.encode()
    ):
        raise Forbidden("wrong passcode")


def _check_may_return(p: Participant) -> None:
    if p.status == "removed" and not p.may_return:
        raise Forbidden("you were removed from this meeting")
    if p.status == "denied":
        raise Forbidden("you were denied entry to this meeting")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
