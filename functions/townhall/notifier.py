"""Pushes messages to WebSocket clients through API Gateway's management API (@connections).

A fan-out posts to many connections at once from a small thread pool: each post is one HTTPS
round trip, and a meeting of 200 would otherwise wait 200 round trips in a row. A connection
that is gone answers 410 (with or without `x-amzn-ErrorType: GoneException`); gone
connections are returned to the caller, which cleans them up.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from townhall.connections_api import ConnectionsApi

logger = logging.getLogger(__name__)

FAN_OUT_THREADS = 32
MAX_POST_BYTES = 128 * 1024
GONE = 410

_apis: dict[str, ConnectionsApi] = {}
_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def management_endpoint(domain_name: str, stage: str, override: str | None) -> str:
    """`https://{domainName}/{stage}` in AWS; the twin overrides it with its own address."""
    return override or f"https://{domain_name}/{stage}"


def _api(endpoint: str) -> ConnectionsApi:
    with _lock:
        api = _apis.get(endpoint)
        if api is None:
            api = _apis[endpoint] = ConnectionsApi(endpoint)
        return api


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(FAN_OUT_THREADS, thread_name_prefix="fan-out")
        return _pool


class ConnectionNotifier:
    def __init__(self, endpoint: str) -> None:
        self._endpoint = endpoint

    def post(self, connection_id: str, message: str) -> bool:
        """Deliver one message; False if the connection is gone."""
        data = message.encode()
        if len(data) > MAX_POST_BYTES:
            raise ValueError(f"message of {len(data)} bytes exceeds the 128 KiB post limit")
        return _api(self._endpoint).post(connection_id, data) != GONE

    def post_many(self, deliveries: Iterable[tuple[str, str]]) -> list[str]:
        """Deliver each (connection id, message) concurrently; return the gone connection ids.

        A failure other than gone (throttling after retries, say) is logged and skipped, so one
        bad connection never stops the others.
        """
        batch = list(deliveries)
        if not batch:
            return []
        if len(batch) == 1:
            connection_id, message = batch[0]
            return [] if self._post_logged(connection_id, message) else [connection_id]
        results: Any = _executor().map(lambda d: (d[0], self._post_logged(*d)), batch)
        return [connection_id for connection_id, delivered in results if not delivered]

    def post_sequences(self, sequences: Iterable[tuple[str, Sequence[str]]]) -> list[str]:
        """Deliver each connection its messages in order, connections concurrently; return the
        gone connection ids (a gone connection gets none of its later messages)."""
        batch = list(sequences)

        def post_in_order(connection_id: str, messages: Sequence[str]) -> bool:
            return all(self._post_logged(connection_id, m) for m in messages)

        if len(batch) == 1:
            connection_id, messages = batch[0]
            return [] if post_in_order(connection_id, messages) else [connection_id]
        results: Any = _executor().map(lambda s: (s[0], post_in_order(*s)), batch)
        return [connection_id for connection_id, delivered in results if not delivered]

    def _post_logged(self, connection_id: str, message: str) -> bool:
        try:
            return self.post(connection_id, message)
        except Exception:
            logger.exception("post to connection %s failed", connection_id)
            return True  # not gone: keep the connection, the client can resync on its next seq

    def disconnect(self, connection_id: str) -> None:
        """Close a connection (its $disconnect follows). Already gone is fine."""
        _api(self._endpoint).delete(connection_id)
