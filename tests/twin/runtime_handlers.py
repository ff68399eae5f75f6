"""Small handlers for the Lambda runtime's own tests."""

from __future__ import annotations

import asyncio
import decimal
import os
import time
from typing import Any


def describe_context(event: Any, context: Any) -> dict[str, Any]:
    return {
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }


def mutate_and_echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    event["nested"]["a"] = 2
    event["mutated"] = True
    return event


def return_decimals(event: Any, context: Any) -> dict[str, Any]:
    return {"whole": decimal.Decimal("3"), "part": decimal.Decimal("2.5")}


def return_a_set(event: Any, context: Any) -> Any:
    return {1, 2}


def raise_unauthorized(event: Any, context: Any) -> Any:
    raise Exception("Unauthorized")


def sleep(event: dict[str, Any], context: Any) -> str:
    time.sleep(event["seconds"])
    return "slept"


def run_a_coroutine(event: Any, context: Any) -> str:
    """What Mangum does: use the thread's current event loop."""

    async def answer() -> str:
        return "ran"

    return asyncio.get_event_loop().run_until_complete(answer())


def describe_process(event: Any, context: Any) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "region": os.environ.get("AWS_REGION"),
        "function_name": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "loop": asyncio.get_event_loop().run_until_complete(asyncio.sleep(0, "ran")),
    }
