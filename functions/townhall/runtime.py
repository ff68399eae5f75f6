"""Builds the services a handler needs, once per Lambda container (or twin process).

Handlers import this module, not boto3 or the stores, so each pays only for what it uses, and
the construction order lives in one place.
"""

from __future__ import annotations

import functools
from typing import Any

from townhall.config import Settings
from townhall.routes import STAGE


def settings() -> Settings:
    """Read on every call (it is a few dict lookups): the services below are cached per
    settings, so a process whose environment changes (the twin restarted on another data
    folder) never keeps serving with the old key or tables."""
    return Settings.from_env()


def token_service() -> Any:
    return _token_service(settings())


@functools.cache
def _token_service(s: Settings) -> Any:
    from townhall.auth.keys import load_signing_key
    from townhall.auth.tokens import TokenService

    return TokenService(load_signing_key(s))


def signaling_service(endpoint: str) -> Any:
    return _signaling_service(settings(), endpoint)


@functools.cache
def _signaling_service(s: Settings, endpoint: str) -> Any:
    from townhall.notifier import ConnectionNotifier
    from townhall.signaling.context import ActionContext
    from townhall.signaling.service import SignalingService
    from townhall.store.breakouts import BreakoutStore
    from townhall.store.chat import ChatStore
    from townhall.store.connections import ConnectionStore
    from townhall.store.participants import ParticipantStore
    from townhall.store.polls import PollStore
    from townhall.store.questions import QuestionStore
    from townhall.store.sessions import SessionStore
    from townhall.store.whiteboard import WhiteboardStore

    # Everything of a session lives in its partition of the Meetings table.
    table = s.meetings_table
    return SignalingService(
        ActionContext(
            sessions=SessionStore(table),
            participants=ParticipantStore(table),
            chat=ChatStore(table),
            polls=PollStore(table),
            questions=QuestionStore(table),
            whiteboard=WhiteboardStore(table),
            connections=ConnectionStore(s.connections_table),
            breakouts=BreakoutStore(table),
            notifier=ConnectionNotifier(endpoint),
            media_factory=lambda: _media_access(s),
        )
    )


def _media_access(s: Settings) -> Any:
    from townhall.media.access import MediaAccess
    from townhall.media.nodes import NodeDirectory
    from townhall.media.placement import MeetingPlacement
    from townhall.media.tokens import MediaTokenService
    from townhall.media.turn import turn_servers

    nodes = NodeDirectory(s.media_nodes_table)
    return MediaAccess(
        MeetingPlacement(s.meetings_table, nodes),
        nodes,
        MediaTokenService(_signing_key(s)),
        turn_servers(s),
    )


def _signing_key(s: Settings) -> Any:
    from townhall.auth.keys import load_signing_key

    return load_signing_key(s)


def signaling_for_event(event: dict[str, Any]) -> Any:
    """The service whose notifier posts back through the API that sent `event`."""
    from townhall.notifier import management_endpoint

    context = event["requestContext"]
    endpoint = management_endpoint(
        context["domainName"], context.get("stage", STAGE), settings().ws_management_endpoint
    )
    return signaling_service(endpoint)


def _outbox_endpoint(s: Settings) -> str:
    if not s.ws_management_endpoint:
        raise RuntimeError("the outbox functions need WS_MANAGEMENT_ENDPOINT")
    return s.ws_management_endpoint


def outbox_poster() -> Any:
    """The notifier the outbox functions post through (they have no request to answer)."""
    from townhall.notifier import ConnectionNotifier

    return ConnectionNotifier(_outbox_endpoint(settings()))


def outbox_fanout() -> Any:
    return _outbox_fanout(settings())


@functools.cache
def _outbox_fanout(s: Settings) -> Any:
    import os

    from townhall.functions import OUTBOX_SLICE, invoke_env_var
    from townhall.outbox.fanout import OutboxFanout
    from townhall.outbox.slices import LambdaSlicePoster
    from townhall.outbox.subjects import PollAndQuestionStates
    from townhall.signaling import protocol
    from townhall.store.outbox import event_from_image
    from townhall.store.participants import ParticipantStore
    from townhall.store.polls import PollStore
    from townhall.store.questions import QuestionStore

    endpoint = _outbox_endpoint(s)
    signaling = _signaling_service(s, endpoint)
    table = s.meetings_table
    slice_function = os.environ.get(invoke_env_var(OUTBOX_SLICE))
    return OutboxFanout(
        ParticipantStore(table),
        outbox_poster(),
        protocol.outbox_message,
        on_gone=signaling.connections_gone,
        close=signaling.close_connection,
        read_image=event_from_image,
        subjects=PollAndQuestionStates(PollStore(table), QuestionStore(table)),
        slices=LambdaSlicePoster(slice_function) if slice_function else None,
    )


def _delivery_queue(s: Settings) -> Any:
    from townhall.webhooks.queue import SqsDeliveryQueue

    if not s.webhook_queue_url or not s.webhook_dead_letter_url:
        raise RuntimeError("webhooks need WEBHOOK_QUEUE_URL and WEBHOOK_DEAD_LETTER_QUEUE_URL")
    return SqsDeliveryQueue(s.webhook_queue_url, s.webhook_dead_letter_url)


def webhooks() -> Any:
    """The partner API's webhook service (subscriptions, the delivery log, replays)."""
    return _webhooks(settings())


@functools.cache
def _webhooks(s: Settings) -> Any:
    from townhall.store.webhooks import WebhookStore
    from townhall.webhooks.subscriptions import WebhookService

    return WebhookService(
        WebhookStore(s.organisations_table), _delivery_queue(s), s.webhook_allow_loopback
    )


def webhook_enqueuer() -> Any:
    return _webhook_enqueuer(settings())


@functools.cache
def _webhook_enqueuer(s: Settings) -> Any:
    from townhall.outbox.webhooks import WebhookEnqueuer
    from townhall.store.meetings import MeetingStore
    from townhall.store.organisations import OrganisationStore
    from townhall.store.outbox import event_from_image
    from townhall.store.webhooks import WebhookStore

    return WebhookEnqueuer(
        MeetingStore(s.meetings_table),
        OrganisationStore(s.organisations_table),
        WebhookStore(s.organisations_table),
        _delivery_queue(s),
        event_from_image,
    )


def webhook_sender() -> Any:
    return _webhook_sender(settings())


@functools.cache
def _webhook_sender(s: Settings) -> Any:
    from townhall.store.webhooks import WebhookStore
    from townhall.webhooks import destination
    from townhall.webhooks.schedule import RetrySchedule
    from townhall.webhooks.sender import WebhookSender

    def post(url: str, body: bytes, headers: dict[str, str]) -> Any:
        return destination.post(
            url,
            body,
            headers,
            timeout=s.webhook_timeout_seconds,
            allow_loopback=s.webhook_allow_loopback,
        )

    return WebhookSender(
        WebhookStore(s.organisations_table),
        _delivery_queue(s),
        post,
        RetrySchedule(time_scale=s.webhook_retry_time_scale),
    )
