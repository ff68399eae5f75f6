"""Idempotent POSTs: a client's `Idempotency-Key` makes a retried create or join return the
first response instead of doing the work twice. Backed by Powertools' idempotency utility on
its DynamoDB table.

The key is scoped to the caller and the route; the request body is the validated payload, so
the same key with a different body is refused instead of silently answered with the old result.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from townhall.errors import Conflict, DomainError, InvalidInput
from townhall.store import dynamo

# fullmatch, not match with "$": "$" also matches before a final newline.
KEY_PATTERN = re.compile(r"[A-Za-z0-9_.:\-]{8,128}")
EXPIRES_AFTER_SECONDS = 24 * 3600


class IdempotencyMismatch(DomainError):
    code = "idempotency_key_reused"


@functools.cache
def _persistence(table: str, client: Any) -> Any:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return DynamoDBPersistenceLayer(table_name=table, boto3_client=client)


@functools.cache
def _config() -> Any:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    return IdempotencyConfig(
        event_key_jmespath="[scope, key]",
        payload_validation_jmespath="payload",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=EXPIRES_AFTER_SECONDS,
    )


def run_once(
    table: str,
    scope: str,
    key: str | None,
    payload: dict[str, Any],
    work: Callable[[], dict[str, Any]],
    lambda_context: Any = None,
) -> dict[str, Any]:
    """Run `work` once per (scope, key); later calls get its stored result.

    With the Lambda context, an in-progress record expires with the invocation, so a retry
    after a timeout is not refused for the whole expiry window."""
    if key is None:
        return work()
    if not KEY_PATTERN.fullmatch(key):
        raise InvalidInput("Idempotency-Key must be 8 to 128 of [A-Za-z0-9_.:-]")
    from aws_lambda_powertools.utilities.idempotency import idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    config = _config()
    if lambda_context is not None:
        config.register_lambda_context(lambda_context)

    @idempotent_function(
        data_keyword_argument="request",
        persistence_store=_persistence(table, dynamo.client()),
        config=config,
        key_prefix="townhall.http",
    )
    def once(request: dict[str, Any]) -> dict[str, Any]:
        return work()

    try:
        result: dict[str, Any] = once(request={"scope": scope, "key": key, "payload": payload})
    except IdempotencyValidationError as exc:
        raise IdempotencyMismatch(
            "this Idempotency-Key was already used with a different request body"
        ) from exc
    except IdempotencyAlreadyInProgressError as exc:
        raise Conflict("a request with this Idempotency-Key is still in progress") from exc
    return result
