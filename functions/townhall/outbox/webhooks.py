"""The outbox's second consumer: events partners subscribe to, enqueued for the sender.

Its own event source mapping on the Meetings table's stream (`townhall.functions.
WEBHOOK_EVENTS`), not a branch of the fan-out consumer: the filter lets through only the event
types webhooks carry (chat, reactions and whiteboard strokes never invoke it), its failures
and retries are its own (an Organisations table that is slow holds no chat message back, and a
webhook event is not given up after seconds the way a stale chat message is), and it scales
with its own concurrency. A DynamoDB stream serves two readers per shard without throttling;
this is the second, so a third consumer should read from this one's queue or from a fan-out
of its own, not from the stream.

For each event: its meeting gives the host, the host's membership the organisation, the
organisation's partition its subscriptions (each read once per batch). Every subscription that
takes the event type gets a delivery item and a queue message, in the stream's order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from townhall.model.event import OutboxEvent
from townhall.model.meeting import Meeting
from townhall.model.organisation import Membership
from townhall.model.webhook import Subscription
from townhall.outbox.fanout import read_records
from townhall.store.webhooks import WebhookRecords
from townhall.webhooks.dispatch import new_deliveries
from townhall.webhooks.events import webhook_event
from townhall.webhooks.queue import DeliveryMessage, DeliveryQueue

logger = logging.getLogger(__name__)


class Meetings(Protocol):
    def get_meeting(self, meeting_id: str) -> Meeting | None: ...


class Memberships(Protocol):
    def membership(self, user_id: str) -> Membership | None: ...


class WebhookEnqueuer:
    def __init__(
        self,
        meetings: Meetings,
        memberships: Memberships,
        store: WebhookRecords,
        queue: DeliveryQueue,
        read_image: Callable[[Mapping[str, Any]], OutboxEvent],
    ) -> None:
        self._meetings = meetings
        self._memberships = memberships
        self._store = store
        self._queue = queue
        self._read_image = read_image

    def handle(self, event: Mapping[str, Any]) -> list[str]:
        """A stream batch in; the sequence numbers to report as failed (the first failure:
        the mapping retries from it, and what was enqueued before it is found kept)."""
        orgs: dict[str, str | None] = {}
        subscriptions: dict[str, list[Subscription]] = {}
        for record in read_records(event, self._read_image):
            if record.event is None:
                # Nothing can be sent of it, and the fan-out consumer reports it already.
                logger.error(
                    "webhooks: record %s skipped: %s", record.sequence_number, record.problem
                )
                continue
            try:
                messages = self._enqueue(record.event, orgs, subscriptions)
                if messages:
                    self._queue.send(messages)
            except Exception:
                logger.exception("webhooks: enqueueing an event failed; retrying from it")
                return [record.sequence_number]
        return []

    def _enqueue(
        self,
        event: OutboxEvent,
        orgs: dict[str, str | None],
        subscriptions: dict[str, list[Subscription]],
    ) -> list[DeliveryMessage]:
        wanted = webhook_event(event)
        if wanted is None:
            return []
        if event.meeting_id not in orgs:
            orgs[event.meeting_id] = self._org_of(event.meeting_id)
        org_id = orgs[event.meeting_id]
        if org_id is None:
            return []
        if org_id not in subscriptions:
            subscriptions[org_id] = self._store.subscriptions(org_id)
        return new_deliveries(self._store, wanted, subscriptions[org_id])

    def _org_of(self, meeting_id: str) -> str | None:
        meeting = self._meetings.get_meeting(meeting_id)
        if meeting is None:
            return None
        membership = self._memberships.membership(meeting.host_id)
        return membership.org_id if membership else None
