"""One webhook event to the subscriptions that want it: a delivery item each (the log, and
what the sender reads), then a queue message each pointing at it."""

from __future__ import annotations

import logging

from townhall.model.webhook import Delivery, Subscription
from townhall.store.webhooks import WebhookRecords
from townhall.webhooks.events import WebhookEvent, delivery_id
from townhall.webhooks.queue import DeliveryMessage

logger = logging.getLogger(__name__)


def wanted_by(event: WebhookEvent, subscriptions: list[Subscription]) -> list[Subscription]:
    return [s for s in subscriptions if s.enabled and event.type in s.event_types]


def new_deliveries(
    store: WebhookRecords, event: WebhookEvent, subscriptions: list[Subscription]
) -> list[DeliveryMessage]:
    """Keep a delivery for each subscription that wants `event`; the messages to enqueue.

    The same event seen again (a retried stream batch) finds its delivery kept: if it was
    never tried, its message may have been lost with the batch, so it is sent again (the
    sender's claim makes a duplicate harmless); otherwise it is news no more."""
    messages: list[DeliveryMessage] = []
    for subscription in wanted_by(event, subscriptions):
        delivery = Delivery(
            delivery_id=delivery_id(subscription.subscription_id, event),
            subscription_id=subscription.subscription_id,
            org_id=subscription.org_id,
            event_type=event.type,
            body=event.body(),
            created_at=event.at,
        )
        if not store.add_delivery(delivery):
            kept = store.delivery(subscription.subscription_id, delivery.delivery_id)
            if kept is None or kept.status != "pending" or kept.attempts:
                continue
        messages.append(
            DeliveryMessage(subscription.org_id, subscription.subscription_id, delivery.delivery_id)
        )
    return messages
