"""Shared helpers for the twin's tests: starting a twin on recording handlers, and waiting."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from infra.twin import LocalTwin, TwinOptions
from tests.twin.sample_handlers import OVERRIDES
from townhall import functions

T = TypeVar("T")


def with_timeout(spec: functions.FunctionSpec, seconds: int) -> functions.FunctionSpec:
    return dataclasses.replace(spec, timeout_seconds=seconds)


def sample_options(**changes: Any) -> TwinOptions:
    """Options for a twin whose every function is a recording sample handler."""
    options = TwinOptions(
        handler_overrides=OVERRIDES,
        # The sample authorizer reads a `token` query parameter (any identity source will do
        # for the emulator's own tests; Townhall's is the subprotocol header).
        ws_identity_source="route.request.querystring.token",
    )
    return dataclasses.replace(options, **changes)


def running_twin(data_dir: Path, **changes: Any) -> Iterator[LocalTwin]:
    """For fixtures: `yield from running_twin(tmp, idle_timeout_seconds=1)`."""
    with LocalTwin.start(data_dir, options=sample_options(**changes)) as twin:
        yield twin


def wait_until(probe: Callable[[], T | None], timeout: float = 5.0) -> T:
    """Poll `probe` until it returns something truthy (blocking)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.02)


async def eventually(probe: Callable[[], T | None], within: float = 5.0) -> T:
    """Poll `probe` until it returns something truthy, without blocking the event loop."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.02)
