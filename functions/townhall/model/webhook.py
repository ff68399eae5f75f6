"""Webhook subscriptions and their deliveries (docs/partners.md#webhooks).

An organisation subscribes URLs to event types; every event of a type a subscription names
becomes a `Delivery` to it, tried on the retry schedule (`townhall.webhooks.schedule`) until
the receiver answers 2xx or the schedule ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# The event types a subscription may name: a fixed list, so a typo is refused at once.
SESSION_STARTED = "session.started"
SESSION_ENDED = "session.ended"
PARTICIPANT_JOINED = "participant.joined"
PARTICIPANT_LEFT = "participant.left"
POLL_CLOSED = "poll.closed"
QUESTION_ANSWERED = "question.answered"
# Sent to the organisation's other subscriptions when one is disabled for failing too long.
WEBHOOK_DISABLED = "webhook.disabled"
EVENT_TYPES: tuple[str, ...] = (
    SESSION_STARTED,
    SESSION_ENDED,
    PARTICIPANT_JOINED,
    PARTICIPANT_LEFT,
    POLL_CLOSED,
    QUESTION_ANSWERED,
    WEBHOOK_DISABLED,
)

DeliveryStatus = Literal["pending", "succeeded", "failed"]
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = ("pending", "succeeded", "failed")


@dataclass(frozen=True)
class SigningSecret:
    # "whsec_<base64>", as Standard Webhooks writes it.
    secret: str
    created_at: int
    # 0: current. A rotated-out secret keeps signing until then (epoch seconds).
    expires_at: int = 0


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    org_id: str
    url: str
    event_types: tuple[str, ...]
    secrets: tuple[SigningSecret, ...]
    created_at: int
    created_by: str
    description: str = ""
    # Disabled for failing too long (or by hand): nothing is sent until re-enabled.
    disabled_at: int = 0
    disabled_reason: str = ""
    # The last 2xx answer (epoch seconds), written at most once a minute.
    last_success_at: int = 0
    version: int = 1

    @property
    def enabled(self) -> bool:
        return self.disabled_at == 0

    def signing_secrets(self, now: float) -> list[str]:
        """The secrets that sign now: the current one and any rotated out less than a day ago."""
        return [s.secret for s in self.secrets if not s.expires_at or s.expires_at > now]


@dataclass(frozen=True)
class Delivery:
    delivery_id: str  # the `webhook-id` header: the same for every attempt and replay
    subscription_id: str
    org_id: str
    event_type: str
    # The exact body posted (JSON text): signatures cover these bytes.
    body: str
    created_at: int  # epoch ms
    status: DeliveryStatus = "pending"
    attempts: int = 0
    last_attempt_at: int = 0  # epoch ms
    last_status_code: int = 0
    last_error: str = ""
    next_attempt_at: int = 0  # epoch ms, on the unscaled schedule; 0: none planned
    replays: int = 0
    attempt_log: tuple[dict[str, int | str], ...] = field(default_factory=tuple)
