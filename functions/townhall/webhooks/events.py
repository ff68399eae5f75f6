"""Which outbox events become which webhook events, and the body partners receive.

The outbox record (`townhall.model.event.OutboxEvent`) carries the signaling event's name and
its payload as clients got it; a webhook carries less (no roster state nobody asked for) and
names things as a partner would:

| outbox event (`contracts.signaling_events`) | webhook event |
|---|---|
| `session.started` | `session.started` |
| `meeting.ended` | `session.ended` |
| `participant.joined` | `participant.joined` |
| `participant.left`, `participant.removed` | `participant.left` (`reason`) |
| `poll.closed` | `poll.closed` (its final counts) |
| `qa.updated` whose question is `answered` | `question.answered` (once per question) |
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contracts.signaling_events import EventName
from townhall.model import webhook
from townhall.model.event import OutboxEvent


@dataclass(frozen=True)
class WebhookEvent:
    type: str
    # What makes two events the same one (a retried stream batch, a question updated after
    # it was answered): deliveries of the same key to a subscription share their id.
    key: str
    at: int  # epoch ms
    data: dict[str, Any]
    # The time in its delivery ids (the log's order): `at`, unless the event can be seen
    # again at another time (a question's later updates), then a time of what it is about.
    id_time: int | None = None

    def body(self) -> str:
        return json.dumps(
            {"type": self.type, "timestamp": iso_ms(self.at), "data": self.data},
            separators=(",", ":"),
            ensure_ascii=False,
            sort_keys=True,
        )


def iso_ms(at: int) -> str:
    return (
        datetime.fromtimestamp(at / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _participant(value: Any) -> dict[str, Any]:
    p = _map(value)
    return {k: p.get(k) for k in ("participant_id", "name", "role")}


def webhook_event(event: OutboxEvent) -> WebhookEvent | None:
    """The webhook event an outbox event is, or None if it is none."""
    where: dict[str, Any] = {
        "meeting_id": event.meeting_id,
        "session_id": event.session_id,
        "seq": event.seq,
        "event_id": event.event_id,
    }
    key = f"{event.meeting_id}/{event.session_id}/{event.event_id}"
    payload = event.payload
    name = event.type
    if name == EventName.SESSION_STARTED:
        data = {**where, "started_by": payload.get("started_by")}
        return WebhookEvent(webhook.SESSION_STARTED, key, event.at, data)
    if name == EventName.MEETING_ENDED:
        data = {**where, "ended_by": payload.get("by")}
        return WebhookEvent(webhook.SESSION_ENDED, key, event.at, data)
    if name == EventName.PARTICIPANT_JOINED:
        data = {**where, "participant": _participant(payload.get("participant"))}
        return WebhookEvent(webhook.PARTICIPANT_JOINED, key, event.at, data)
    if name in (EventName.PARTICIPANT_LEFT, EventName.PARTICIPANT_REMOVED):
        removed = name == EventName.PARTICIPANT_REMOVED
        participant = _participant(payload.get("participant"))
        participant["participant_id"] = payload.get("participant_id")
        data = {
            **where,
            "participant": participant,
            "reason": "removed" if removed else payload.get("reason"),
        }
        return WebhookEvent(webhook.PARTICIPANT_LEFT, key, event.at, data)
    if name == EventName.POLL_CLOSED:
        poll = _map(payload.get("poll"))
        fields = ("poll_id", "question", "options", "multiple", "counts", "voters")
        data = {**where, "poll": {k: poll.get(k) for k in fields}}
        return WebhookEvent(webhook.POLL_CLOSED, key, event.at, data)
    if name == EventName.QA_UPDATED:
        question = _map(payload.get("question"))
        if question.get("status") != "answered":
            return None
        kept = ("question_id", "text", "asked_by_name", "votes", "answer")
        data = {**where, "question": {k: question.get(k) for k in kept}}
        # Once per question: later updates (upvotes) of an answered question are not news.
        once = f"{event.meeting_id}/{event.session_id}/question:{question.get('question_id')}"
        asked = _ms(question.get("created_at"))
        return WebhookEvent(webhook.QUESTION_ANSWERED, once, event.at, data, asked)
    return None


def delivery_id(subscription_id: str, event: WebhookEvent) -> str:
    """`msg_` + the event's time (so a subscription's log sorts newest first) + a digest of
    what makes it this event for this subscription: the same event gives the same id."""
    digest = hashlib.sha256(f"{subscription_id}|{event.type}|{event.key}".encode()).hexdigest()
    at = event.at if event.id_time is None else event.id_time
    return f"msg_{at:013d}{digest[:19]}"


def _ms(value: Any) -> int:
    """An epoch time in ms, whether stored in seconds or ms (0 if it is not one)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return 0
    return int(value * 1000 if value < 10**11 else value) % 10**13
