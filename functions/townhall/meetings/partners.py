"""What a partner does with an organisation's meetings (docs/partners.md): the host's own
operations (`MeetingService`), opened to the organisation, with a scope per operation and
every id checked against the caller's organisation.

A meeting belongs to its host's organisation. A meeting in another organisation, or none, is
"not found" (never "forbidden"), so ids cannot be probed. What the partner changes, it changes
as the meeting's host would (the same validation, the same co-host rules); a meeting a key
creates is hosted by the person who created the key.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from townhall.auth.accounts import clean_name
from townhall.auth.claims import AccessClaims
from townhall.auth.principals import Principal
from townhall.auth.tokens import InviteClaims, TokenService
from townhall.errors import Forbidden, InvalidInput, NotFound
from townhall.meetings.ending import end_running
from townhall.meetings.service import MeetingDraft, MeetingService
from townhall.meetings.summary import SummaryReader
from townhall.model.meeting import Meeting
from townhall.model.session import Session, SessionKey
from townhall.store import cursors
from townhall.store.accounts import AccountStore
from townhall.store.cursors import Page
from townhall.store.meetings import MeetingRecords
from townhall.store.organisations import OrganisationRecords
from townhall.store.sessions import RunningSessionRecords, SessionRecords, SessionRow

# The parts of a session's summary, each listed a page at a time.
SUMMARY_PARTS = ("attendance", "chat", "polls", "questions")
MAX_INVITE_MINUTES = 30 * 24 * 60
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_START_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_USER = re.compile(r"u_[0-9a-z_]{1,40}")
_MAX_MEMBER_PAGES = 50


class PartnerSessionRecords(SessionRecords, RunningSessionRecords, Protocol):
    """Sessions as listed, read and ended from the partner API (SessionStore)."""


class PartnerMeetings:
    def __init__(
        self,
        meetings: MeetingService,
        store: MeetingRecords,
        sessions: PartnerSessionRecords,
        accounts: AccountStore,
        organisations: OrganisationRecords,
        tokens: TokenService,
    ) -> None:
        self._meetings = meetings
        self._store = store
        self._sessions = sessions
        self._accounts = accounts
        self._organisations = organisations
        self._tokens = tokens

    # -- meetings -----------------------------------------------------------------------------

    def owned(self, principal: Principal, meeting_id: str) -> Meeting:
        meeting = self._store.get_meeting(meeting_id)
        if meeting is None or self._org_of(meeting.host_id) != principal.org_id:
            raise NotFound("meeting not found")
        return meeting

    def get(self, principal: Principal, meeting_id: str) -> Meeting:
        principal.require("meetings:read")
        return self._meetings.current(self.owned(principal, meeting_id))

    def create(self, principal: Principal, draft: MeetingDraft) -> Meeting:
        principal.require("meetings:write")
        if self._org_of(principal.user_id) != principal.org_id:
            # A key outlives its creator's membership only as a refusal.
            raise Forbidden("this key's creator is no longer in the organisation")
        return self._meetings.create(self._host(principal.user_id), draft)

    def update(self, principal: Principal, meeting_id: str, draft: MeetingDraft) -> Meeting:
        principal.require("meetings:write")
        meeting = self.owned(principal, meeting_id)
        return self._meetings.update(self._host(meeting.host_id), meeting_id, draft)

    def delete(self, principal: Principal, meeting_id: str) -> None:
        principal.require("meetings:write")
        meeting = self.owned(principal, meeting_id)
        self._meetings.delete(self._host(meeting.host_id), meeting_id)

    def listing(self, principal: Principal, limit: int, cursor: str | None) -> Page[Meeting]:
        """The organisation's meetings, by host (member id order), then by scheduled start.
        The cursor names a host of this organisation and a position in their meetings; a
        host who is not (or no longer) a member is refused, so a cursor opens no one else's."""
        principal.require("meetings:read")
        limit = cursors.page_size(limit)
        hosts = self._member_ids(principal.org_id)
        start_host, after = hosts[0] if hosts else "", None
        if cursor is not None:
            fields = cursors.decode(cursor, {"h": _USER, "m": _ID, "t": _START_UTC})
            start_host = str(fields["h"])
            after = (str(fields["m"]), str(fields["t"]))
            if start_host not in hosts:
                raise InvalidInput("cursor is not valid: pass next_cursor from the previous page")
        found: list[Meeting] = []
        next_cursor = None
        for host in hosts[hosts.index(start_host) :] if hosts else []:
            more = True
            while more and len(found) < limit:
                page, more = self._store.host_page(host, limit - len(found), after)
                if not page:
                    break
                found += [m for m, _ in page]
                after = (page[-1][0].meeting_id, page[-1][1])
            if len(found) == limit:
                if after is not None and (more or host != hosts[-1]):
                    next_cursor = cursors.encode({"h": host, "m": after[0], "t": after[1]})
                break
            after = None
        return Page([self._meetings.current(m) for m in found], next_cursor)

    def invite(
        self, principal: Principal, meeting_id: str, name: str, minutes: int
    ) -> InviteClaims:
        """A join link's invite for a named participant."""
        principal.require("meetings:write")
        self.owned(principal, meeting_id)
        if not 1 <= minutes <= MAX_INVITE_MINUTES:
            raise InvalidInput(f"expires_in_minutes must be 1 to {MAX_INVITE_MINUTES}")
        return self._tokens.issue_invite(meeting_id, clean_name(name, "display_name"), minutes * 60)

    # -- sessions -----------------------------------------------------------------------------

    def sessions(
        self, principal: Principal, meeting_id: str, limit: int, cursor: str | None
    ) -> Page[SessionRow]:
        principal.require("sessions:read")
        self._meetings.current(self.owned(principal, meeting_id))  # an abandoned one ends
        rows, next_cursor = self._sessions.past(meeting_id, cursors.page_size(limit), cursor)
        return Page(rows, next_cursor)

    def session(self, principal: Principal, meeting_id: str, session_id: str) -> Session:
        principal.require("sessions:read")
        return self._session(principal, meeting_id, session_id)

    def summary_part(
        self,
        principal: Principal,
        reader: SummaryReader,
        meeting_id: str,
        session_id: str,
        part: str,
        limit: int,
        cursor: str | None,
    ) -> Page[dict[str, Any]]:
        """One part of the session's summary, a page at a time. The summary is read whole
        (as the host's is) and the cursor is a position in it, bound to this session and
        part: one from another list is refused."""
        session = self.session(principal, meeting_id, session_id)
        entries: list[dict[str, Any]] = reader.summary(session)[part]
        limit = cursors.page_size(limit)
        offset = 0
        if cursor is not None:
            fields = cursors.decode(
                cursor,
                {
                    "s": re.compile(re.escape(session_id)),
                    "p": re.compile(part),
                    "o": range(1, 1_000_000),
                },
            )
            offset = int(fields["o"])
            if offset > len(entries):
                raise InvalidInput("cursor is not valid: pass next_cursor from the previous page")
        end = offset + limit
        next_cursor = (
            cursors.encode({"s": session_id, "p": part, "o": end}) if end < len(entries) else None
        )
        return Page(entries[offset:end], next_cursor)

    def end(self, principal: Principal, meeting_id: str, session_id: str) -> Session:
        principal.require("meetings:write")
        session = self._session(principal, meeting_id, session_id)
        end_running(self._sessions, session)
        ended = self._sessions.get(session.key)
        return ended if ended is not None else session

    # -- helpers ------------------------------------------------------------------------------

    def _session(self, principal: Principal, meeting_id: str, session_id: str) -> Session:
        self.owned(principal, meeting_id)
        found = self._sessions.get(SessionKey(meeting_id, session_id))
        if found is None:
            raise NotFound("session not found")
        return found

    def _org_of(self, user_id: str) -> str | None:
        m = self._organisations.membership(user_id)
        return m.org_id if m else None

    def _host(self, user_id: str) -> AccessClaims:
        """The meeting's host, as the meeting service knows a host (it checks co-host emails
        against the host's own)."""
        account = self._accounts.by_id(user_id)
        if account is None:
            raise NotFound("meeting not found")
        return AccessClaims(account.user_id, account.email, account.name, 0)

    def _member_ids(self, org_id: str) -> list[str]:
        ids: list[str] = []
        cursor = None
        for _ in range(_MAX_MEMBER_PAGES):
            page = self._organisations.members(org_id, cursors.MAX_PAGE, cursor)
            ids += [m.user_id for m in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        return sorted(ids)
