"""Request and response bodies of the partner API's webhooks (/api/v1/webhooks)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, StrictBool, StrictStr

from townhall.api.models import Body, examples
from townhall.api.partner_models import NEXT_CURSOR
from townhall.model.webhook import EVENT_TYPES
from townhall.webhooks.destination import MAX_URL_LENGTH
from townhall.webhooks.subscriptions import MAX_DESCRIPTION

EventType = Literal[
    "session.started",
    "session.ended",
    "participant.joined",
    "participant.left",
    "poll.closed",
    "question.answered",
    "webhook.disabled",
]
assert set(EventType.__args__) == set(EVENT_TYPES)  # type: ignore[attr-defined]

_URL = Field(
    min_length=1,
    max_length=MAX_URL_LENGTH,
    description="https URL that receives the events (a public address: see docs)",
)
_TYPES = Field(min_length=1, max_length=len(EVENT_TYPES), description="the event types it gets")
_DESCRIPTION = Field(default="", max_length=MAX_DESCRIPTION, description="what it is for")


class WebhookIn(Body):
    model_config = examples(
        {
            "url": "https://crm.example.com/townhall/events",
            "event_types": ["session.started", "session.ended", "participant.joined"],
            "description": "CRM sync",
        }
    )
    url: StrictStr = _URL
    event_types: list[EventType] = _TYPES
    description: StrictStr = _DESCRIPTION


class WebhookUpdateIn(WebhookIn):
    model_config = examples(
        {
            "url": "https://crm.example.com/townhall/events",
            "event_types": ["session.ended"],
            "description": "CRM sync",
            "enabled": True,
        }
    )
    enabled: StrictBool = Field(
        description="false pauses it; true re-enables one disabled for failing (replay after)"
    )


_WEBHOOK_EXAMPLE: dict[str, Any] = {
    "subscription_id": "wh_4k2m9x1q8w7z3p5v",
    "url": "https://crm.example.com/townhall/events",
    "event_types": ["session.started", "session.ended"],
    "description": "CRM sync",
    "enabled": True,
    "disabled_at": None,
    "disabled_reason": None,
    "created_at": "2026-12-01T09:00:00Z",
    "created_by": "u_1b2c3d4e",
    "last_success_at": None,
    "secrets": [{"created_at": "2026-12-01T09:00:00Z", "expires_at": None}],
}


class SecretInfoOut(BaseModel):
    created_at: str
    expires_at: str | None = Field(description="when a rotated-out secret stops signing")


class WebhookOut(BaseModel):
    model_config = examples(_WEBHOOK_EXAMPLE)
    subscription_id: str
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    disabled_at: str | None
    disabled_reason: str | None
    created_at: str
    created_by: str
    last_success_at: str | None = Field(description="the last 2xx answer, to the minute")
    secrets: list[SecretInfoOut] = Field(description="the signing secrets' times (never values)")


class WebhookCreatedOut(WebhookOut):
    model_config = examples(
        {**_WEBHOOK_EXAMPLE, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    )
    secret: str = Field(description="the signing secret: shown now, never again")


class WebhookListOut(BaseModel):
    model_config = examples({"items": [_WEBHOOK_EXAMPLE]})
    items: list[WebhookOut]


class SecretOut(BaseModel):
    model_config = examples({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
    secret: str = Field(description="the new secret: shown now, never again")


class AttemptOut(BaseModel):
    attempt: int
    at: str
    status_code: int = Field(description="the receiver's status; 0 if none was answered")
    error: str


_DELIVERY_EXAMPLE: dict[str, Any] = {
    "delivery_id": "msg_17648000000001f3a9c2b7d4e5f60718",
    "event_type": "session.ended",
    "created_at": "2026-12-01T09:45:00.000Z",
    "status": "failed",
    "attempts": 8,
    "replays": 0,
    "last_status_code": 500,
    "last_error": "answered 500",
    "next_attempt_at": None,
    "attempt_log": [
        {
            "attempt": 1,
            "at": "2026-12-01T09:45:00.120Z",
            "status_code": 500,
            "error": "answered 500",
        }
    ],
    "payload": {"type": "session.ended", "timestamp": "2026-12-01T09:45:00.000Z", "data": {}},
}


class DeliveryOut(BaseModel):
    model_config = examples(_DELIVERY_EXAMPLE)
    delivery_id: str = Field(description="the `webhook-id` header of every attempt")
    event_type: str
    created_at: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    replays: int
    last_status_code: int
    last_error: str
    next_attempt_at: str | None
    attempt_log: list[AttemptOut]
    payload: dict[str, Any] = Field(description="the body that is posted")


class DeliveryPageOut(BaseModel):
    model_config = examples({"items": [_DELIVERY_EXAMPLE], "next_cursor": None})
    items: list[DeliveryOut]
    next_cursor: str | None = NEXT_CURSOR


class ReplayOut(BaseModel):
    model_config = examples({"replayed": 3, "more": False})
    replayed: int = Field(description="failed deliveries sent again")
    more: bool = Field(description="more failed deliveries are left: call again")
