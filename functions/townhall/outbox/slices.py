"""Posting a slice of a large session's connections through another Lambda invocation."""

from __future__ import annotations

import json
import threading
from typing import Any

from townhall.outbox.fanout import slice_request

_clients: dict[str | None, Any] = {}
_lock = threading.Lock()


class SliceFailed(Exception):
    """The slice invocation failed; the whole batch is retried (clients drop repeats)."""


def _lambda_client() -> Any:
    import os

    import boto3
    from botocore.config import Config

    # AWS_ENDPOINT_URL_LAMBDA points the twin's handlers at its own Invoke API.
    endpoint = os.environ.get("AWS_ENDPOINT_URL_LAMBDA")
    with _lock:
        if endpoint not in _clients:
            _clients[endpoint] = boto3.client(
                "lambda",
                # A slice posts at most a few hundred messages; its timeout bounds the wait.
                config=Config(read_timeout=35, connect_timeout=3, retries={"max_attempts": 2}),
            )
        return _clients[endpoint]


class LambdaSlicePoster:
    def __init__(self, function_name: str) -> None:
        self._function_name = function_name

    def post_slice(self, messages: list[str], deliveries: list[tuple[str, list[int]]]) -> list[str]:
        answer = _lambda_client().invoke(
            FunctionName=self._function_name,
            InvocationType="RequestResponse",
            Payload=slice_request(messages, deliveries).encode(),
        )
        body = answer["Payload"].read()
        if answer.get("FunctionError"):
            raise SliceFailed(f"slice invocation failed: {body[:300]!r}")
        result = json.loads(body)
        gone = result.get("gone") if isinstance(result, dict) else None
        if not isinstance(gone, list) or not all(isinstance(c, str) for c in gone):
            raise SliceFailed("the slice answered without a gone list")
        return gone
