"""Request and response bodies of the HTTP API. Strict types: a number sent as a string, or a
string sent as a number, is refused with a clear 422 instead of being coerced."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from townhall.model.meeting import MAX_COHOSTS


def examples(*examples: Any) -> ConfigDict:
    """A model's examples, as the OpenAPI document shows them (merged into a subclass's
    own config, so a request body keeps `Body`'s strictness)."""
    return ConfigDict(json_schema_extra={"examples": list(examples)})


_OCCURRENCE_EXAMPLE: dict[str, Any] = {
    "start": "2026-12-02T09:00:00+01:00",
    "end": "2026-12-02T09:30:00+01:00",
    "start_utc": "2026-12-02T08:00:00Z",
}
MEETING_OUT_EXAMPLE: dict[str, Any] = {
    "meeting_id": "k7m2p9q4rt",
    "title": "Standup",
    "kind": "meeting",
    "start": "2026-12-01T09:00",
    "timezone": "Europe/Paris",
    "duration_minutes": 30,
    "rrule": "FREQ=WEEKLY;BYDAY=MO,WE,FR",
    "passcode": None,
    "waiting_room": False,
    "allow_before_host": False,
    "cohosts": ["ada@example.com"],
    "live": False,
    "live_session_id": None,
    "last_session_at": None,
    "video_slots": 9,
    "join_url": "https://townhall.example.com/join.html?m=k7m2p9q4rt",
    "invite_url": "https://townhall.example.com/api/meetings/k7m2p9q4rt/invite.ics",
    "next_occurrences": [_OCCURRENCE_EXAMPLE],
    "schedule_error": None,
    "stored_error": None,
}
# What the host's view of a meeting has and the public page's has not.
_HOST_ONLY_FIELDS = frozenset(
    {
        "rrule",
        "passcode",
        "cohosts",
        "live_session_id",
        "last_session_at",
        "video_slots",
        "join_url",
        "invite_url",
        "live",
    }
)
_SESSION_OUT: dict[str, Any] = {
    "user_id": "u_5e1b2c3d4e5f6a7b",
    "email": "hana@example.com",
    "name": "Hana Host",
    "access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6IjEifQ...",
    "access_expires_at": 1796000900,
    "refresh_token": "3f9a1c2b7d5e4a10b6c8.Zm9vYmFy...",
    "token_type": "Bearer",
}


class Body(BaseModel):
    # StrictStr also refuses a string that is not valid Unicode (a lone surrogate, which JSON's
    # "\ud800" escape carries) with a 422, before any domain code or store sees it
    # (tests/integration/test_http_api.py pins it for every text field).
    model_config = ConfigDict(extra="forbid", strict=True)


class SignUp(Body):
    model_config = examples(
        {"email": "hana@example.com", "password": "correct horse 1", "name": "Hana Host"}
    )

    email: StrictStr = Field(max_length=254)
    password: StrictStr = Field(max_length=256)
    name: StrictStr = Field(max_length=80)


class SignIn(Body):
    model_config = examples({"email": "hana@example.com", "password": "correct horse 1"})

    email: StrictStr = Field(max_length=254)
    password: StrictStr = Field(max_length=256)


class RefreshRequest(Body):
    model_config = examples({"refresh_token": "3f9a1c2b7d5e4a10b6c8.Zm9vYmFy..."})

    refresh_token: StrictStr = Field(max_length=200)


class SessionOut(BaseModel):
    model_config = examples(_SESSION_OUT)

    user_id: str
    email: str
    name: str
    access_token: str
    access_expires_at: int
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"


class MeetingIn(Body):
    model_config = examples(
        {
            "title": "Standup",
            "start": "2026-12-01T09:00",
            "timezone": "Europe/Paris",
            "duration_minutes": 30,
            "rrule": "FREQ=WEEKLY;BYDAY=MO,WE,FR",
            "cohosts": ["ada@example.com"],
        }
    )

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
    model_config = examples(_OCCURRENCE_EXAMPLE)

    start: str
    end: str
    start_utc: str


class MeetingOut(BaseModel):
    model_config = examples(MEETING_OUT_EXAMPLE)

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
    model_config = examples(
        {
            **{k: v for k, v in MEETING_OUT_EXAMPLE.items() if k not in _HOST_ONLY_FIELDS},
            "needs_passcode": True,
            "live": True,
            "your_role": None,
        }
    )

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
    model_config = examples(
        {"display_name": "Ada", "passcode": "4321", "guest_key": "Zm9vYmFyYmF6cXV4cXV1eA"},
        {"invite": "eyJhbGciOiJFZERTQSJ9..."},
    )

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
    model_config = examples(
        {
            "session_id": "s_8k2m4n6p9q3r",
            "participant_id": "g_0c1d2e3f4a5b6c7d8e9f0a1b",
            "resume_token": "b6c8Zm9vYmFyYmF6cXV4cXV1eA",
        }
    )

    session_id: StrictStr | None = Field(default=None, max_length=64)
    participant_id: StrictStr = Field(max_length=64)
    resume_token: StrictStr = Field(max_length=128)


class JoinOut(BaseModel):
    model_config = examples(
        {
            "meeting_id": "k7m2p9q4rt",
            "session_id": "s_8k2m4n6p9q3r",
            "participant_id": "g_0c1d2e3f4a5b6c7d8e9f0a1b",
            "role": "attendee",
            "name": "Ada",
            "join_token": "eyJhbGciOiJFZERTQSJ9...",
            "expires_at": 1796000900,
            "resume_token": "b6c8Zm9vYmFyYmF6cXV4cXV1eA",
            "ws_url": "wss://townhall.example.com/live",
        }
    )

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
    model_config = examples({"error": {"code": "not_found", "message": "meeting not found"}})

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
    model_config = examples(
        {
            "meeting": {
                "meeting_id": "k7m2p9q4rt",
                "session_id": "s_8k2m4n6p9q3r",
                "title": "Standup",
                "started_at": "2026-12-01T09:01:00Z",
                "ended_at": "2026-12-01T09:30:00Z",
            },
            "attendance": [
                {
                    "participant_id": "u_5e1b2c3d4e5f6a7b",
                    "name": "Hana Host",
                    "role": "host",
                    "intervals": [
                        {"joined_at": "2026-12-01T09:01:00Z", "left_at": "2026-12-01T09:30:00Z"}
                    ],
                    "total_seconds": 1740,
                    "rooms": [],
                }
            ],
            "rooms": [],
            "chat": [
                {
                    "at": "2026-12-01T09:02:00Z",
                    "from_name": "Hana Host",
                    "text": "Welcome",
                    "room": None,
                }
            ],
            "polls": [],
            "questions": [],
        }
    )

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
    model_config = examples(
        {
            "sessions": [
                {
                    "session_id": "s_8k2m4n6p9q3r",
                    "started_at": "2026-12-01T09:01:00Z",
                    "ended_at": "2026-12-01T09:30:00Z",
                    "live": False,
                }
            ],
            "next_cursor": None,
        }
    )

    sessions: list[SessionRowOut] = Field(description="newest first")
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null at the end"
    )


class AccountOut(BaseModel):
    model_config = examples(
        {"user_id": "u_5e1b2c3d4e5f6a7b", "email": "hana@example.com", "name": "Hana Host"}
    )
    user_id: str
    email: str
    name: str


class HealthOut(BaseModel):
    model_config = examples({"status": "ok"})
    status: Literal["ok"]


class JwksOut(BaseModel):
    model_config = examples(
        {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                    "kid": "1",
                    "use": "sig",
                    "alg": "EdDSA",
                }
            ]
        }
    )
    keys: list[dict[str, str]]
