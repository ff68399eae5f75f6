"""Getting into a session: the join (through the invite link), the lobby before a session
starts, and the rejoin that brings a dropped or reloaded page back as the same participant.

Identity. A signed-in person is their account. A guest is a **guest identity**: a random
secret the browser keeps in `localStorage` (`guest_key`, shared by every tab of that profile)
and sends with each join; the participant id is derived from it, so the same guest is the
same participant over every join of a session (attendance counts them once, and a removal
sticks: a new tab or the link again finds the removed participant). A guest who clears their
storage is a new guest; the waiting room and the lock still leave it to the host.

Host side. The meeting's host and its co-hosts (accounts whose email the host listed in
`Meeting.cohosts`) are the host side: signed in, they are not asked for the passcode, get
past a lock, and may start a session (a webinar's too: "webinars never start without the
host" means without someone of the host side). The host joins as `host`, a co-host new to the
session as `cohost`. The list is read at each join: whom the host takes off it is, from their
next join, a guest like any other (the role someone already holds in a running session is
the session's, changed there by `promote` and `demote`).

Sessions. A host-side join starts a session when none runs; a guest's waits in the lobby
(`NotStarted`, HTTP 409 `not_started`) unless the meeting allows guests before the host
(never for a webinar). Someone already let into the running session is not asked for the
passcode again. A session everybody dropped out of is ended first (`liveness`). A meeting
whose stored item is damaged (`Meeting.damaged`) cannot be joined until its host edits it.

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
from typing import Literal

from townhall import clock
from townhall.auth.accounts import clean_name
from townhall.auth.claims import AccessClaims
from townhall.auth.tokens import TokenService
from townhall.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound, Unauthenticated
from townhall.ids import new_session_id
from townhall.meetings.liveness import Liveness
from townhall.model.meeting import Meeting
from townhall.model.participant import Participant, Role
from townhall.model.session import Session
from townhall.store.meetings import MeetingRecords
from townhall.store.participants import ParticipantRecords
from townhall.store.sessions import SessionAlreadyLive, SessionRecords

GUEST_KEY = re.compile(r"[A-Za-z0-9_-]{22,128}")
# Who joins from the host's side: the meeting's host, or one of its co-hosts.
HostSide = Literal["host", "cohost"]
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
    # A join link's invite (the partner API's): the person joins under its name, as the
    # participant the invite names, without the passcode.
    invite: str | None = None


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


def invited_participant_id(invite_id: str) -> str:
    """The participant a join link names: the same over every use of the link."""
    return "i_" + hashlib.sha256(f"townhall-invite:{invite_id}".encode()).hexdigest()[:24]


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
        self._liveness = Liveness(sessions, participants)

    def identity(self, request: JoinRequest, account: AccessClaims | None) -> str:
        """Who is joining: the invite's participant, the account, else the guest identity
        (required for guests)."""
        if request.invite is not None:
            return invited_participant_id(self._tokens.verify_invite(request.invite).invite_id)
        if account is not None:
            return account.user_id
        if request.guest_key is None:
            raise InvalidInput("a guest joins with a guest_key (a random secret the browser keeps)")
        return guest_participant_id(request.guest_key)

    def join(
        self, meeting_id: str, request: JoinRequest, account: AccessClaims | None
    ) -> JoinGrant:
        meeting = self._meeting(meeting_id)
        if meeting.damage is not None:
            raise Conflict(f"{meeting.damage}: its host must edit or delete it")
        invited = False
        if request.invite is not None:
            invite = self._tokens.verify_invite(request.invite)
            if invite.meeting_id != meeting_id:
                raise Unauthenticated("this join link is for another meeting")
            request = JoinRequest(invite.name, None, None, request.invite)
            account, invited = None, True  # the link's person, whoever is signed in
        participant_id = self.identity(request, account)
        side = host_side(meeting, account)
        session = self._live(meeting)
        existing = self._participants.get(session.key, participant_id) if session else None
        if side is None and not invited and not _was_let_in(existing):
            _check_passcode(meeting, request.passcode)
        if session is None:
            if side is None and not meeting.guests_may_start:
                raise NotStarted("the host has not started this meeting yet")
            session = self._start(meeting, participant_id)
            existing = self._participants.get(session.key, participant_id)
        if existing is not None:
            _check_may_return(existing)
        if session.locked and side is None and not _was_let_in(existing):
            raise Forbidden("the meeting is locked")
        if existing is None:
            existing = self._new_participant(session, participant_id, request, account, side)
        role: Role = "host" if side == "host" else existing.role
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
        """The session running now (one everybody dropped out of is ended: none)."""
        return self._liveness.running(meeting)

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
        side: HostSide | None,
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
            role=side or "attendee",
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


def host_side(meeting: Meeting, account: AccessClaims | None) -> HostSide | None:
    """Who joins from the host's side: `host` for the meeting's host, `cohost` for an account
    on its co-host list, else None (a guest, signed in or not)."""
    if account is None:
        return None
    if account.user_id == meeting.host_id:
        return "host"
    return "cohost" if meeting.is_cohost(account.email) else None


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
