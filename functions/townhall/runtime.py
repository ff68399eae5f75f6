"""Builds the services a handler needs, once per Lambda container (or twin process).

Handlers import this module, not boto3 or the stores, so each pays only for what it uses, and
the construction order lives in one place.
"""

from __future__ import annotations

import functools
from typing import Any

from townhall.config import Settings
from townhall.routes import STAGE


@functools.cache
def settings() -> Settings:
    return Settings.from_env()


@functools.cache
def token_service() -> Any:
    from townhall.auth.keys import load_signing_key
    from townhall.auth.tokens import TokenService

    return TokenService(load_signing_key(settings()))


@functools.cache
def signaling_service(endpoint: str) -> Any:
    from townhall.notifier import ConnectionNotifier
    from townhall.signaling.service import SignalingService
    from townhall.store.connections import ConnectionStore
    from townhall.store.meetings import MeetingStore

    s = settings()
    return SignalingService(
        MeetingStore(s.meetings_table),
        ConnectionStore(s.connections_table),
        ConnectionNotifier(endpoint),
    )


def signaling_for_event(event: dict[str, Any]) -> Any:
    """The service whose notifier posts back through the API that sent `event`."""
    from townhall.notifier import management_endpoint

    context = event["requestContext"]
    endpoint = management_endpoint(
        context["domainName"], context.get("stage", STAGE), settings().ws_management_endpoint
    )
    return signaling_service(endpoint)
