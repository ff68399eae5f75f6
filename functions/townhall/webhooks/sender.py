"""The sender: a batch of SQS delivery messages in, each delivery signed and posted.

Each message names a delivery and the attempt to make. The attempt is claimed in the store
first (a duplicated message, which SQS may deliver, claims nothing and posts nothing), then
signed with every secret the subscription signs with now, posted through
`townhall.webhooks.destination` (checked addresses, no redirects, a bounded time), and its
outcome logged on the delivery. A failure is retried by a new message for the next attempt,
delayed by the schedule (`townhall.webhooks.schedule`); after the last, the delivery is failed,
its message goes to the dead-letter queue, and a subscription that has not succeeded since
that delivery began (27 hours of failures) is disabled, with a `webhook.disabled` event to the
organisation's other subscriptions that take it.

The messages of a batch are posted at once (threads): one slow receiver does not hold the
others. What each line logs: ids, status codes, error classes; never a secret, a signature or
a body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from townhall import clock
from townhall.model import webhook
from townhall.model.webhook import Delivery, Subscription
from townhall.store.webhooks import WebhookRecords
from townhall.webhooks import signing
from townhall.webhooks.destination import Answer, DestinationRefused
from townhall.webhooks.dispatch import new_deliveries
from townhall.webhooks.events import WebhookEvent
from townhall.webhooks.queue import DeliveryMessage, DeliveryQueue
from townhall.webhooks.schedule import RetrySchedule, first_leg

logger = logging.getLogger(__name__)

# (url, body, headers) -> the answer; raises DestinationRefused or OSError.
Post = Callable[[str, bytes, dict[str, str]], Answer]
MAX_PARALLEL_POSTS = 10


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    status_code: int = 0
    error: str = ""


class WebhookSender:
    def __init__(
        self,
        store: WebhookRecords,
        queue: DeliveryQueue,
        post: Post,
        schedule: RetrySchedule,
    ) -> None:
        self._store = store
        self._queue = queue
        self._post = post
        self._schedule = schedule

    def handle(self, event: Mapping[str, Any]) -> list[str]:
        """An SQS event in; the message ids to report as failed (SQS makes them visible
        again after the visibility timeout, and past maxReceiveCount moves them to the
        dead-letter queue)."""
        records = event.get("Records")
        if not isinstance(records, list):
            raise ValueError("the event has no Records list")
        with ThreadPoolExecutor(MAX_PARALLEL_POSTS, thread_name_prefix="webhook-post") as pool:
            results = list(pool.map(self._one, records[:100]))
        return [r for r in results if r]

    def _one(self, record: Any) -> str:
        """'' when done with the record, its message id to have SQS retry it."""
        message_id = str(record.get("messageId", "")) if isinstance(record, dict) else ""
        try:
            body = record["body"]
            message = DeliveryMessage.from_json(body)
        except (KeyError, TypeError, ValueError):
            # Retrying cannot make it readable: straight to the dead-letter queue.
            logger.error("webhook message %s is not readable; dead-lettered", message_id)
            self._queue.dead_letter(
                str(record.get("body", ""))[:2000] if isinstance(record, dict) else ""
            )
            return ""
        try:
            self.deliver(message)
        except Exception:
            logger.exception("webhook delivery %s failed in the sender", message.delivery_id)
            return message_id or "-"
        return ""

    def deliver(self, message: DeliveryMessage) -> None:
        if message.wait > 0:
            # The rest of a wait longer than SQS delays a message.
            delay, rest = first_leg(message.wait)
            self._queue.send([replace(message, wait=rest)], delay)
            return
        delivery = self._store.delivery(message.subscription_id, message.delivery_id)
        if delivery is None or delivery.org_id != message.org_id:
            logger.warning("webhook delivery %s is gone; message dropped", message.delivery_id)
            return
        if delivery.status != "pending" or delivery.attempts != message.attempt - 1:
            return  # a duplicate or stale message: that attempt is made or was
        if not self._store.claim_attempt(
            delivery.subscription_id, delivery.delivery_id, message.attempt
        ):
            return
        subscription = self._store.subscription(message.org_id, message.subscription_id)
        outcome = self._attempt(subscription, delivery)
        now_ms = clock.now_ms()
        entry: dict[str, int | str] = {
            "attempt": message.attempt,
            "at": now_ms,
            "status_code": outcome.status_code,
            "error": outcome.error,
        }
        logger.info(
            "webhook attempt",
            extra={
                "delivery": delivery.delivery_id,
                "attempt": message.attempt,
                "status_code": outcome.status_code,
                "succeeded": outcome.succeeded,
            },
        )
        if outcome.succeeded:
            self._store.record_attempt(delivery, message.attempt, entry, "succeeded", 0)
            if subscription is not None:
                self._store.record_success(
                    subscription.org_id, subscription.subscription_id, int(now_ms / 1000)
                )
            return
        wait = self._schedule.wait_after(message.attempt)
        if wait is None or subscription is None or not subscription.enabled:
            self._store.record_attempt(delivery, message.attempt, entry, "failed", 0)
            if wait is None:
                self._queue.dead_letter(message.to_json())
                self._disable_if_failing(subscription, delivery)
            return
        self._store.record_attempt(
            delivery, message.attempt, entry, "pending", now_ms + wait * 1000
        )
        delay, rest = first_leg(self._schedule.real_seconds(wait))
        self._queue.send([replace(message, attempt=message.attempt + 1, wait=rest)], delay)

    def _attempt(self, subscription: Subscription | None, delivery: Delivery) -> Outcome:
        if subscription is None:
            return Outcome(False, error="the subscription was deleted")
        if not subscription.enabled:
            return Outcome(False, error="the subscription is disabled")
        now = clock.now()
        headers = signing.headers(
            subscription.signing_secrets(now), delivery.delivery_id, int(now), delivery.body
        )
        try:
            answer = self._post(subscription.url, delivery.body.encode(), headers)
        except DestinationRefused as exc:
            return Outcome(False, error=f"refused: {exc}"[:300])
        except (OSError, ValueError) as exc:
            return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:300])
        if 200 <= answer.status < 300:
            return Outcome(True, answer.status)
        hint = " (redirects are not followed)" if 300 <= answer.status < 400 else ""
        return Outcome(False, answer.status, f"answered {answer.status}{hint}")

    def _disable_if_failing(self, subscription: Subscription | None, delivery: Delivery) -> None:
        if subscription is None or not subscription.enabled:
            return
        if subscription.last_success_at * 1000 >= delivery.created_at:
            return  # it has worked since this delivery began: one bad event, not a dead URL
        at = int(clock.now())
        reason = (
            f"every attempt failed for {self._schedule.attempts} attempts over the whole "
            f"retry schedule (delivery {delivery.delivery_id})"
        )
        if not self._store.disable(subscription.org_id, subscription.subscription_id, at, reason):
            return
        logger.warning("webhook subscription %s disabled", subscription.subscription_id)
        notice = WebhookEvent(
            webhook.WEBHOOK_DISABLED,
            f"disabled/{subscription.subscription_id}/{at}",
            at * 1000,
            {
                "subscription_id": subscription.subscription_id,
                "url": subscription.url,
                "reason": reason,
            },
        )
        others = [
            s
            for s in self._store.subscriptions(subscription.org_id)
            if s.subscription_id != subscription.subscription_id
        ]
        messages = new_deliveries(self._store, notice, others)
        if messages:
            self._queue.send(messages)
