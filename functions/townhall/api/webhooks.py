"""The partner API's webhook routes (/api/v1/webhooks, docs/partners.md#webhooks). Thin: each
route resolves the caller, calls `townhall.webhooks.subscriptions`, and shapes the answer."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import Path, Query, Response

from townhall import runtime
from townhall.api.partners import Caller, Cursor, PageSize, routes
from townhall.api.webhook_models import (
    DeliveryOut,
    DeliveryPageOut,
    ReplayOut,
    SecretOut,
    WebhookCreatedOut,
    WebhookIn,
    WebhookListOut,
    WebhookOut,
    WebhookUpdateIn,
)
from townhall.meetings.summary import iso
from townhall.model.webhook import Delivery, Subscription
from townhall.store.cursors import DEFAULT_PAGE
from townhall.webhooks.events import iso_ms
from townhall.webhooks.subscriptions import WebhookService

SubscriptionId = Annotated[str, Path(max_length=40, description="wh_ and 16 characters")]
DeliveryId = Annotated[str, Path(max_length=40, description="msg_ and 32 characters")]
StatusFilter = Annotated[
    Literal["pending", "succeeded", "failed"] | None,
    Query(description="only deliveries in this state"),
]
TAGS: list[str | Any] = ["webhooks"]


def service() -> WebhookService:
    webhooks: WebhookService = runtime.webhooks()
    return webhooks


def _webhook_out(s: Subscription) -> dict[str, Any]:
    return {
        "subscription_id": s.subscription_id,
        "url": s.url,
        "event_types": list(s.event_types),
        "description": s.description,
        "enabled": s.enabled,
        "disabled_at": iso(s.disabled_at) if s.disabled_at else None,
        "disabled_reason": s.disabled_reason or None,
        "created_at": iso(s.created_at),
        "created_by": s.created_by,
        "last_success_at": iso(s.last_success_at) if s.last_success_at else None,
        "secrets": [
            {
                "created_at": iso(x.created_at),
                "expires_at": iso(x.expires_at) if x.expires_at else None,
            }
            for x in s.secrets
        ],
    }


def _delivery_out(d: Delivery) -> dict[str, Any]:
    return {
        "delivery_id": d.delivery_id,
        "event_type": d.event_type,
        "created_at": iso_ms(d.created_at),
        "status": d.status,
        "attempts": d.attempts,
        "replays": d.replays,
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "next_attempt_at": iso_ms(d.next_attempt_at) if d.next_attempt_at else None,
        "attempt_log": [
            {
                "attempt": int(a.get("attempt", 0)),
                "at": iso_ms(int(a.get("at", 0))),
                "status_code": int(a.get("status_code", 0)),
                "error": str(a.get("error", "")),
            }
            for a in d.attempt_log
        ],
        "payload": json.loads(d.body),
    }


@routes.post(
    "/webhooks",
    status_code=201,
    response_model=WebhookCreatedOut,
    tags=TAGS,
    summary="Subscribe a URL to events",
)
def create_webhook(body: WebhookIn, caller: Caller) -> dict[str, Any]:
    """A subscription (webhooks:write). The answer's `secret` verifies the signatures
    (docs/partners.md#verifying): store it, it is not shown again. At most 20 per
    organisation."""
    created = service().create(caller, body.url, list(body.event_types), body.description)
    return {**_webhook_out(created.subscription), "secret": created.secret}


@routes.get("/webhooks", response_model=WebhookListOut, tags=TAGS, summary="List subscriptions")
def list_webhooks(caller: Caller) -> dict[str, Any]:
    """The organisation's subscriptions, oldest first (webhooks:read); never their secrets."""
    return {"items": [_webhook_out(s) for s in service().subscriptions(caller)]}


@routes.get(
    "/webhooks/{subscription_id}", response_model=WebhookOut, tags=TAGS, summary="A subscription"
)
def get_webhook(subscription_id: SubscriptionId, caller: Caller) -> dict[str, Any]:
    """One subscription (webhooks:read), with why it was disabled if it was."""
    return _webhook_out(service().get(caller, subscription_id))


@routes.put(
    "/webhooks/{subscription_id}",
    response_model=WebhookOut,
    tags=TAGS,
    summary="Change a subscription",
)
def update_webhook(
    subscription_id: SubscriptionId, body: WebhookUpdateIn, caller: Caller
) -> dict[str, Any]:
    """Its URL, event types, description, and whether it is enabled (webhooks:write).
    Re-enabling sends only new events: replay the failed ones."""
    changed = service().update(
        caller, subscription_id, body.url, list(body.event_types), body.description, body.enabled
    )
    return _webhook_out(changed)


@routes.delete(
    "/webhooks/{subscription_id}", status_code=204, tags=TAGS, summary="Delete a subscription"
)
def delete_webhook(subscription_id: SubscriptionId, caller: Caller) -> Response:
    """Nothing more is sent to it (webhooks:write); deliveries already queued are dropped."""
    service().delete(caller, subscription_id)
    return Response(status_code=204)


@routes.post(
    "/webhooks/{subscription_id}/rotate-secret",
    response_model=SecretOut,
    tags=TAGS,
    summary="Rotate the signing secret",
)
def rotate_secret(subscription_id: SubscriptionId, caller: Caller) -> dict[str, Any]:
    """A new secret (webhooks:write). For 24 hours every attempt carries a signature with
    each secret (space-separated), so a receiver can switch without a gap."""
    return {"secret": service().rotate_secret(caller, subscription_id).secret}


@routes.get(
    "/webhooks/{subscription_id}/deliveries",
    response_model=DeliveryPageOut,
    tags=TAGS,
    summary="The delivery log",
)
def deliveries(
    subscription_id: SubscriptionId,
    caller: Caller,
    status: StatusFilter = None,
    limit: PageSize = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Deliveries to the subscription, newest first, with every attempt (webhooks:read).
    Kept 30 days. With `status`, a page may be shorter than `limit`: page on."""
    page = service().deliveries(caller, subscription_id, status, limit, cursor)
    return {"items": [_delivery_out(d) for d in page.items], "next_cursor": page.next_cursor}


@routes.post(
    "/webhooks/{subscription_id}/deliveries/{delivery_id}/replay",
    response_model=DeliveryOut,
    tags=TAGS,
    summary="Replay a failed delivery",
)
def replay(subscription_id: SubscriptionId, delivery_id: DeliveryId, caller: Caller) -> Any:
    """Send a failed delivery again, from its first attempt, with the same `webhook-id` and
    body (webhooks:write). 409 unless it failed."""
    return _delivery_out(service().replay(caller, subscription_id, delivery_id))


@routes.post(
    "/webhooks/{subscription_id}/replay-failed",
    response_model=ReplayOut,
    tags=TAGS,
    summary="Replay every failed delivery",
)
def replay_failed(subscription_id: SubscriptionId, caller: Caller) -> dict[str, Any]:
    """Send every failed delivery again, oldest first (up to 500 a call; `more` says to call
    again) (webhooks:write)."""
    replayed, more = service().replay_failed(caller, subscription_id)
    return {"replayed": replayed, "more": more}
