"""Managing an organisation's webhook subscriptions (the partner API's /api/v1/webhooks).

Reading takes `webhooks:read`, changing `webhooks:write`. Every input is checked before
anything is written: the URL (`townhall.webhooks.destination.check_url`), the event types
(from `townhall.model.webhook.EVENT_TYPES`), a description's length, the organisation's count.
A secret is shown when it is made (creation, rotation) and never again.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace

from townhall import clock
from townhall.auth.principals import Principal
from townhall.errors import Conflict, InvalidInput, NotFound
from townhall.model.webhook import (
    EVENT_TYPES,
    Delivery,
    DeliveryStatus,
    SigningSecret,
    Subscription,
)
from townhall.store.cursors import Page
from townhall.store.webhooks import (
    DELIVERY_ID,
    MAX_SUBSCRIPTIONS,
    SUBSCRIPTION_ID,
    WebhookRecords,
)
from townhall.webhooks import signing
from townhall.webhooks.destination import check_url
from townhall.webhooks.queue import DeliveryMessage, DeliveryQueue

READ = "webhooks:read"
WRITE = "webhooks:write"
# A rotated-out secret keeps signing this long, so receivers can switch without a gap.
ROTATION_OVERLAP_SECONDS = 24 * 3600
MAX_DESCRIPTION = 200
# Failed deliveries one "replay all" reopens; the answer says whether more are left.
MAX_REPLAY = 500
_ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Created:
    subscription: Subscription
    secret: str


def clean_event_types(event_types: list[str]) -> tuple[str, ...]:
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise InvalidInput(f"unknown event types {unknown}; known: {list(EVENT_TYPES)}")
    if not event_types:
        raise InvalidInput("a subscription needs at least one event type")
    return tuple(t for t in EVENT_TYPES if t in event_types)


def clean_description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION or not description.isprintable():
        raise InvalidInput(f"description must be printable, at most {MAX_DESCRIPTION} characters")
    return description.strip()


class WebhookService:
    def __init__(self, store: WebhookRecords, queue: DeliveryQueue, allow_loopback: bool) -> None:
        self._store = store
        self._queue = queue
        self._allow_loopback = allow_loopback

    def create(
        self, caller: Principal, url: str, event_types: list[str], description: str
    ) -> Created:
        caller.require(WRITE)
        check_url(url, self._allow_loopback)
        types = clean_event_types(event_types)
        description = clean_description(description)
        if len(self._store.subscriptions(caller.org_id)) >= MAX_SUBSCRIPTIONS:
            raise Conflict(f"an organisation has at most {MAX_SUBSCRIPTIONS} subscriptions")
        now = int(clock.now())
        secret = signing.new_secret()
        subscription = Subscription(
            subscription_id="wh_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16)),
            org_id=caller.org_id,
            url=url,
            event_types=types,
            secrets=(SigningSecret(secret, now),),
            created_at=now,
            created_by=caller.user_id,
            description=description,
        )
        self._store.create_subscription(subscription)
        return Created(subscription, secret)

    def subscriptions(self, caller: Principal) -> list[Subscription]:
        caller.require(READ)
        return sorted(self._store.subscriptions(caller.org_id), key=lambda s: s.created_at)

    def get(self, caller: Principal, subscription_id: str, scope: str = READ) -> Subscription:
        caller.require(scope)
        found = (
            self._store.subscription(caller.org_id, subscription_id)
            if SUBSCRIPTION_ID.fullmatch(subscription_id)
            else None
        )
        if found is None:
            raise NotFound("webhook subscription not found")
        return found

    def update(
        self,
        caller: Principal,
        subscription_id: str,
        url: str,
        event_types: list[str],
        description: str,
        enabled: bool,
    ) -> Subscription:
        current = self.get(caller, subscription_id, WRITE)
        check_url(url, self._allow_loopback)
        changed = replace(
            current,
            url=url,
            event_types=clean_event_types(event_types),
            description=clean_description(description),
            version=current.version + 1,
        )
        if enabled and not current.enabled:
            changed = replace(changed, disabled_at=0, disabled_reason="")
        elif not enabled and current.enabled:
            changed = replace(
                changed, disabled_at=int(clock.now()), disabled_reason="disabled by hand"
            )
        return self._save(changed, current.version)

    def delete(self, caller: Principal, subscription_id: str) -> None:
        self.get(caller, subscription_id, WRITE)
        if not self._store.delete_subscription(caller.org_id, subscription_id):
            raise NotFound("webhook subscription not found")

    def rotate_secret(self, caller: Principal, subscription_id: str) -> Created:
        """A new secret signs from now on; the ones before keep signing for a day (each
        attempt carries a signature per secret), then stop."""
        current = self.get(caller, subscription_id, WRITE)
        now = int(clock.now())
        secret = signing.new_secret()
        kept = tuple(
            s if s.expires_at else replace(s, expires_at=now + ROTATION_OVERLAP_SECONDS)
            for s in current.secrets
            if not s.expires_at or s.expires_at > now
        )
        changed = replace(
            current, secrets=(*kept, SigningSecret(secret, now)), version=current.version + 1
        )
        return Created(self._save(changed, current.version), secret)

    def _save(self, changed: Subscription, version: int) -> Subscription:
        if not self._store.save_subscription(changed, version):
            raise Conflict("the subscription changed meanwhile; read it and try again")
        return changed

    # -- the delivery log ---------------------------------------------------------------------

    def deliveries(
        self,
        caller: Principal,
        subscription_id: str,
        status: DeliveryStatus | None,
        limit: int,
        cursor: str | None,
    ) -> Page[Delivery]:
        self.get(caller, subscription_id)
        return self._store.deliveries(subscription_id, status, limit, cursor)

    def replay(self, caller: Principal, subscription_id: str, delivery_id: str) -> Delivery:
        """Send a failed delivery again from its first attempt (same id, same body)."""
        subscription = self.get(caller, subscription_id, WRITE)
        delivery = (
            self._store.delivery(subscription_id, delivery_id)
            if DELIVERY_ID.fullmatch(delivery_id)
            else None
        )
        if delivery is None:
            raise NotFound("delivery not found")
        if not subscription.enabled:
            raise Conflict("the subscription is disabled: enable it first")
        if not self._store.reopen(subscription_id, delivery_id):
            raise Conflict("only a failed delivery can be replayed")
        self._queue.send([DeliveryMessage(caller.org_id, subscription_id, delivery_id)])
        return replace(delivery, status="pending", attempts=0, replays=delivery.replays + 1)

    def replay_failed(self, caller: Principal, subscription_id: str) -> tuple[int, bool]:
        """Replay every failed delivery (up to MAX_REPLAY): (how many, whether more are left)."""
        subscription = self.get(caller, subscription_id, WRITE)
        if not subscription.enabled:
            raise Conflict("the subscription is disabled: enable it first")
        replayed: list[DeliveryMessage] = []
        cursor: str | None = None
        more = False
        for _ in range(100):  # pages of failed deliveries, bounded
            page = self._store.deliveries(subscription_id, "failed", 100, cursor)
            for delivery in page.items:
                if len(replayed) >= MAX_REPLAY:
                    more = True
                    break
                if self._store.reopen(subscription_id, delivery.delivery_id):
                    replayed.append(
                        DeliveryMessage(caller.org_id, subscription_id, delivery.delivery_id)
                    )
            cursor = page.next_cursor
            if more or cursor is None:
                break
        # Oldest first: the log pages newest first.
        self._queue.send(list(reversed(replayed)))
        return len(replayed), more
