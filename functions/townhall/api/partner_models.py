"""Request and response bodies of the partner API (/api/v1): organisations, API keys, pages.

Every list answers `{"items": [...], "next_cursor": ...}`; pass `next_cursor` back as
`cursor` for the next page (null: the last page). Examples here are what the OpenAPI shows.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, StrictInt, StrictStr, create_model

from townhall.api.models import (
    MEETING_OUT_EXAMPLE,
    AttendanceOut,
    Body,
    ChatLineOut,
    MeetingOut,
    PollResultOut,
    QuestionResultOut,
    SessionRowOut,
    SummaryMeetingOut,
    examples,
)
from townhall.auth.api_keys import DEFAULT_RATE_PER_SECOND, MAX_RATE_PER_SECOND
from townhall.meetings.partners import MAX_INVITE_MINUTES
from townhall.model.organisation import SCOPES

ScopeName = Literal[
    "meetings:read",
    "meetings:write",
    "sessions:read",
    "recordings:read",
    "webhooks:read",
    "webhooks:write",
]

NEXT_CURSOR = Field(
    description="pass it as `cursor` to get the next page; null on the last page",
    examples=["eyJoIjoidV8xYjJjIiwibSI6Im1lZXRpbmcwMSJ9"],
)


class OrganisationOut(BaseModel):
    model_config = examples(
        {
            "org_id": "o_3f9a1c2b7d5e4a10",
            "name": "Hana's organisation",
            "created_at": "2026-12-01T09:00:00Z",
            "your_role": "owner",
        }
    )
    org_id: str
    name: str
    created_at: str = Field(description="ISO 8601 UTC")
    your_role: Literal["owner", "admin", "member"] | None = Field(
        description="the signed-in person's role; null when an API key asks"
    )


_MEMBER_EXAMPLE: dict[str, object] = {
    "user_id": "u_5e1b2c3d4e5f6a7b",
    "email": "hana@example.com",
    "name": "Hana Host",
    "role": "owner",
    "joined_at": "2026-12-01T09:00:00Z",
}


class MemberOut(BaseModel):
    model_config = examples(_MEMBER_EXAMPLE)
    user_id: str
    email: str
    name: str
    role: Literal["owner", "admin", "member"]
    joined_at: str


class MemberIn(Body):
    model_config = examples({"email": "ada@example.com", "role": "admin"})
    email: StrictStr = Field(max_length=254, description="an existing account's email")
    role: Literal["owner", "admin", "member"] = "member"


class ApiKeyIn(Body):
    model_config = examples(
        {
            "name": "CRM sync",
            "scopes": ["meetings:read", "meetings:write", "sessions:read"],
            "rate_per_second": 10,
        }
    )
    name: StrictStr = Field(max_length=80, description="what the key is for (1 to 80)")
    scopes: list[ScopeName] = Field(
        min_length=1, max_length=len(SCOPES), description="what the key may do"
    )
    rate_per_second: StrictInt = Field(
        default=DEFAULT_RATE_PER_SECOND,
        ge=1,
        le=MAX_RATE_PER_SECOND,
        description="requests per second the key may make; more get 429 with Retry-After",
    )


_KEY_EXAMPLE: dict[str, object] = {
    "key_id": "k3v9x2m4q8w1z7p5",
    "prefix": "thk_k3v9x2m4q8w1z7p5",
    "name": "CRM sync",
    "scopes": ["meetings:read", "meetings:write", "sessions:read"],
    "rate_per_second": 10,
    "created_at": "2026-12-01T09:00:00Z",
    "created_by": "u_5e1b2c3d4e5f6a7b",
    "revoked_at": None,
    "last_used_at": "2026-12-01T09:05:00Z",
}


class ApiKeyOut(BaseModel):
    model_config = examples(_KEY_EXAMPLE)
    key_id: str
    prefix: str = Field(description="how the key starts: `thk_<key_id>` (never the secret)")
    name: str
    scopes: list[str]
    rate_per_second: int
    created_at: str
    created_by: str = Field(description="the member who created it; meetings it creates are theirs")
    revoked_at: str | None
    last_used_at: str | None = Field(description="to the minute: written at most once a minute")


class ApiKeyCreatedOut(ApiKeyOut):
    model_config = examples(
        {**_KEY_EXAMPLE, "last_used_at": None, "key": "thk_k3v9x2m4q8w1z7p5_" + "x" * 43}
    )
    key: str = Field(
        description="the whole key, shown this once (only its hash is kept): send it as "
        "`Authorization: Bearer <key>`"
    )


class JoinLinkIn(Body):
    model_config = examples({"display_name": "Ada Lovelace", "expires_in_minutes": 1440})
    display_name: StrictStr = Field(max_length=80, description="the name the person joins as")
    expires_in_minutes: StrictInt = Field(default=24 * 60, ge=1, le=MAX_INVITE_MINUTES)


class JoinLinkOut(BaseModel):
    model_config = examples(
        {
            "meeting_id": "k7m2p9q4rt",
            "display_name": "Ada Lovelace",
            "join_url": "https://townhall.example.com/join.html?m=k7m2p9q4rt#invite=eyJhbGci...",
            "invite": "eyJhbGciOiJFZERTQSJ9...",
            "expires_at": 1796000000,
        }
    )
    meeting_id: str
    display_name: str
    join_url: str = Field(
        description="the link to give the person: the invite rides in the fragment, which "
        "browsers never send to a server (no log holds it)"
    )
    invite: str = Field(
        description="the same invite, for a client of its own: POST /api/meetings/{id}/join "
        'with {"invite": ...} returns a join grant'
    )
    expires_at: int = Field(description="Unix time after which the link no longer works")


class SessionDetailOut(SummaryMeetingOut):
    model_config = examples(
        {
            "meeting_id": "k7m2p9q4rt",
            "session_id": "s_8k2m4n6p9q3r",
            "title": "Standup",
            "started_at": "2026-12-01T09:01:00Z",
            "ended_at": None,
            "live": True,
        }
    )
    live: bool


class RecordingOut(BaseModel):
    """A recording of a session (none exist yet: the broadcast issue brings them)."""

    model_config = examples(
        {
            "recording_id": "r_2b4c6d8e0f1a",
            "session_id": "s_8k2m4n6p9q3r",
            "started_at": "2026-12-01T09:01:00Z",
            "duration_seconds": 2640,
            "download_url": "https://townhall.example.com/recordings/r_2b4c6d8e0f1a.mp4",
        }
    )
    recording_id: str
    session_id: str
    started_at: str
    duration_seconds: int
    download_url: str


class RegistrantOut(BaseModel):
    """Someone registered for a webinar (none exist yet: the audience issue brings them)."""

    model_config = examples(
        {
            "registrant_id": "g_1a2b3c4d5e6f",
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "registered_at": "2026-11-30T12:00:00Z",
        }
    )
    registrant_id: str
    name: str
    email: str
    registered_at: str


def page_of(
    name: str, item: type[BaseModel], example: dict[str, Any] | None, order: str
) -> type[BaseModel]:
    """The page model of a list of `item`: `{"items": [...], "next_cursor": ...}`."""
    model: type[BaseModel] = create_model(
        name,
        __config__=examples({"items": [example] if example else [], "next_cursor": None}),
        items=(list[item], Field(description=order)),  # type: ignore[valid-type]
        next_cursor=(str | None, NEXT_CURSOR),
    )
    return model


MemberPageOut = page_of("MemberPageOut", MemberOut, _MEMBER_EXAMPLE, "by user id")
ApiKeyPageOut = page_of("ApiKeyPageOut", ApiKeyOut, _KEY_EXAMPLE, "oldest first")
MeetingPageOut = page_of(
    "MeetingPageOut", MeetingOut, MEETING_OUT_EXAMPLE, "by host, then by scheduled start"
)
PartnerSessionPageOut = page_of(
    "PartnerSessionPageOut",
    SessionRowOut,
    {
        "session_id": "s_8k2m4n6p9q3r",
        "started_at": "2026-12-01T09:01:00Z",
        "ended_at": "2026-12-01T09:45:00Z",
        "live": False,
    },
    "newest first",
)
AttendancePageOut = page_of(
    "AttendancePageOut",
    AttendanceOut,
    {
        "participant_id": "i_0c1d2e3f4a5b6c7d8e9f0a1b",
        "name": "Ada Lovelace",
        "role": "attendee",
        "intervals": [{"joined_at": "2026-12-01T09:02:00Z", "left_at": "2026-12-01T09:40:00Z"}],
        "total_seconds": 2280,
        "rooms": [],
    },
    "by first arrival",
)
ChatPageOut = page_of(
    "ChatPageOut",
    ChatLineOut,
    {"at": "2026-12-01T09:03:00Z", "from_name": "Ada", "text": "Hello", "room": None},
    "public messages, in order",
)
PollPageOut = page_of(
    "PollPageOut",
    PollResultOut,
    {
        "question": "Which day suits you?",
        "options": ["Tuesday", "Thursday", "Either"],
        "counts": [4, 1, 3],
        "voters": 8,
        "status": "open",
        "multiple": True,
    },
    "in the order they were created",
)
QuestionPageOut = page_of(
    "QuestionPageOut",
    QuestionResultOut,
    {
        "text": "When?",
        "asked_by_name": "Bob",
        "votes": 3,
        "status": "answered",
        "answer": "Friday",
        "asked_at": "2026-12-01T09:10:00Z",
    },
    "most votes first",
)
RecordingPageOut = page_of(
    "RecordingPageOut", RecordingOut, None, "always empty until recordings exist"
)
RegistrantPageOut = page_of(
    "RegistrantPageOut", RegistrantOut, None, "always empty until registration exists"
)
