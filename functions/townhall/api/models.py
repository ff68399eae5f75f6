"""Request and response bodies of the HTTP API. Strict types: a number sent as a string, or a
string sent as a number, is refused with a clear 422 instead of being coerced."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from townhall.model.meeting import MAX_COHOSTS


class Body(BaseModel):
    # StrictStr also refuses a string that is not valid Unicode (a lone surrogate, which JSON's
    # "\ud800" escape carries) with a 422, before any domain code or store sees it
    # (tests/integration/test_http_api.py pins it for every text field).
    model_config = ConfigDict(extra="forbid", strict=True)


class SignUp(Body):
    email: StrictStr = Field(max_length=254)
    password: StrictStr = Field(max_length=256)
    name: StrictStr = Field(max_length=80)


class SignIn(Body):
    email: StrictStr = Field(max_length=254)
    password: StrictStr = Field(max_length=256)


class RefreshRequest(Body):
    refresh_token: StrictStr = Field(max_length=200)


class SessionOut(BaseModel):
    user_id: str
    email: str
    name: str
    access_token: str
    access_expires_at: int
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"


class MeetingIn(Body):
    title: StrictStr = Field(max_length=200)
    start: StrictStr = Field(
        max_length=64,
        description="ISO 8601 local date-time in `timezone`, e.g. 2026-12-01T09:00 (1970 to 2199)",
    )
    timezone: StrictStr = Field(max_length=64, description="IANA zone, e.g. Europe/Paris")
    duration_minutes: StrictInt
    rrule: StrictStr | None = Field(
        default=None,
        max_length=256,
        description="RFC 5545 RRULE: FREQ (DAILY to YEARLY), INTERVAL and COUNT (1 to 999), "
        "UNTIL (a UTC date-time), BYDAY, BYMONTHDAY, BYMONTH, WKST",
    )
    passcode: StrictStr | None = Field(default=None, max_length=32)
    waiting_room: StrictBool = False
    kind: Literal["meeting", "webinar"] = "meeting"
    video_slots: StrictInt = 9
    allow_before_host: StrictBool = Field(
        default=False,
        description="guests may start a session before a host is there (never for a webinar)",
    )
    cohosts: list[Annotated[StrictStr, Field(max_length=254)]] = Field(
        default_factory=list,
        max_length=MAX_COHOSTS,
        description=f"co-hosts: at most {MAX_COHOSTS} account email addresses (not your own; "
        "kept in lower case, each once). Signed in with one of them, a person may start the "
        "meeting (a webinar too), is not asked for the passcode and joins as a co-host",
    )


class OccurrenceOut(BaseModel):
    start: str
    end: str
    start_utc: str


class MeetingOut(BaseModel):
    meeting_id: str
    title: str
    kind: str
    start: str
    timezone: str
    duration_minutes: int
    rrule: str | None
    passcode: str | None
    waiting_room: bool
    allow_before_host: bool
    cohosts: list[str] = Field(description="co-hosts' account emails")
    live: bool = Field(description="a session of it is running now")
    live_session_id: str | None
    last_session_at: str | None = Field(description="when its last session started, ISO 8601 UTC")
    video_slots: int
    join_url: str
    invite_url: str
    next_occurrences: list[OccurrenceOut]
    schedule_error: str | None = Field(
        default=None,
        description="why the stored schedule cannot be used (then no occurrences): edit the "
        "meeting or delete it",
    )
    stored_error: str | None = Field(
        default=None,
        description="which stored attributes cannot be read (they are shown with defaults, "
        "and the meeting cannot be joined): edit the meeting or delete it",
    )


class PublicMeetingOut(BaseModel):
    meeting_id: str
    title: str
    kind: str
    start: str
    timezone: str
    duration_minutes: int
    needs_passcode: bool
    waiting_room: bool
    live: bool = Field(description="a session is running: joining lets you in (or waits)")
    allow_before_host: bool = Field(
        description="guests may start it; otherwise they wait in the lobby until a host does"
    )
    next_occurrences: list[OccurrenceOut]
    schedule_error: str | None = Field(
        default=None, description="set when the host's schedule cannot be used"
    )
    stored_error: str | None = Field(
        default=None,
        description="set when the meeting's stored settings cannot be read: it cannot be "
        "joined until its host fixes it",
    )
    your_role: Literal["host", "cohost"] | None = Field(
        default=None,
        description="with a valid bearer token: 'host' or 'cohost' when the signed-in account "
        "hosts the meeting or is one of its co-hosts (it may start the meeting and is not "
        "asked for the passcode); null otherwise",
    )


class JoinIn(Body):
    display_name: StrictStr | None = Field(
        default=None, max_length=80, description="required, except for a signed-in person"
    )
    passcode: StrictStr | None = Field(default=None, max_length=32)
    guest_key: StrictStr | None = Field(
        default=None,
        max_length=128,
        description="a guest's identity: a random secret (22 to 128 of [A-Za-z0-9_-]) the "
        "browser keeps and sends with every join; required without a bearer token",
    )
    invite: StrictStr | None = Field(
        default=None,
        max_length=2048,
        description="a join link's invite (the partner API's join-links): join as the person "
        "it names, without the passcode; display_name, passcode and guest_key are then ignored",
    )


class RejoinIn(Body):
    session_id: StrictStr | None = Field(default=None, max_length=64)
    participant_id: StrictStr = Field(max_length=64)
    resume_token: StrictStr = Field(max_length=128)


class JoinOut(BaseModel):
    meeting_id: str
    session_id: str
    participant_id: str
    role: str
    name: str
    join_token: str
    expires_at: int
    resume_token: str
    ws_url: str


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


class SummaryMeetingOut(BaseModel):
    meeting_id: str
    session_id: str
    title: str
    started_at: str | None = Field(description="when the session started, ISO 8601 UTC")
    ended_at: str | None = Field(description="when it ended; null while it runs")


class AttendanceIntervalOut(BaseModel):
    joined_at: str
    left_at: str | None = Field(description="null while the interval goes on")


class RoomStayOut(BaseModel):
    room_id: str
    room: str = Field(description="the breakout room's name")
    from_: str = Field(alias="from", description="when they entered it, ISO 8601 UTC")
    to: str | None = Field(description="when they left it; null while they are in it")


class AttendanceOut(BaseModel):
    participant_id: str = Field(description="the person: their account, or guest identity")
    name: str
    role: str
    intervals: list[AttendanceIntervalOut] = Field(description="each time they were in")
    total_seconds: int
    rooms: list[RoomStayOut] = Field(
        default_factory=list, description="each breakout room they were in, and when"
    )


class BreakoutRoomOut(BaseModel):
    room_id: str
    name: str


class ChatLineOut(BaseModel):
    at: str
    from_name: str
    text: str
    room: str | None = Field(
        default=None, description="the breakout room it was sent in; null for the main room"
    )


class PollResultOut(BaseModel):
    question: str
    options: list[str]
    counts: list[int]
    voters: int
    status: Literal["open", "closed"]
    multiple: bool


class QuestionResultOut(BaseModel):
    text: str
    asked_by_name: str
    votes: int
    status: Literal["open", "answered", "dismissed"]
    answer: str | None
    asked_at: str


class SummaryOut(BaseModel):
    meeting: SummaryMeetingOut
    attendance: list[AttendanceOut]
    rooms: list[BreakoutRoomOut] = Field(
        default_factory=list, description="the session's breakout rooms (the latest setup)"
    )
    chat: list[ChatLineOut] = Field(description="public messages, in order")
    polls: list[PollResultOut]
    questions: list[QuestionResultOut] = Field(description="most votes first")


class SessionRowOut(BaseModel):
    session_id: str
    started_at: str = Field(description="ISO 8601 UTC")
    ended_at: str | None = Field(description="null while it runs")
    live: bool


class SessionPageOut(BaseModel):
    sessions: list[SessionRowOut] = Field(description="newest first")
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null at the end"
    )
