"""LocalLambdaRuntime: lazy import, Lambda's context, the JSON boundary, errors and timeouts,
and the invocation observers (in threads and in worker processes)."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from infra.twin.lambda_runtime import LambdaInvocationError, LocalLambdaRuntime
from townhall import functions

FAST = dataclasses.replace(functions.WS_CONNECT, timeout_seconds=1)


def runtime_for(handler: str, **kwargs: Any) -> LocalLambdaRuntime:
    return LocalLambdaRuntime(
        [FAST],
        handler_overrides={FAST.logical_id: f"tests.twin.runtime_handlers.{handler}"},
        **kwargs,
    )


@pytest.fixture
def cleanup() -> Iterator[list[LocalLambdaRuntime]]:
    runtimes: list[LocalLambdaRuntime] = []
    yield runtimes
    for runtime in runtimes:
        runtime.close()


async def invoke(runtimes: list[LocalLambdaRuntime], handler: str, event: Any) -> Any:
    runtime = runtime_for(handler)
    runtimes.append(runtime)
    return await runtime.invoke(FAST.logical_id, event)


async def test_context_looks_like_lambdas(cleanup: list[LocalLambdaRuntime]) -> None:
    context = await invoke(cleanup, "describe_context", {})
    assert context["function_name"] == "townhall-WsConnectFunction"
    assert context["function_version"] == "$LATEST"
    assert context["invoked_function_arn"] == (
        "arn:aws:lambda:us-east-1:123456789012:function:townhall-WsConnectFunction"
    )
    assert context["memory_limit_in_mb"] == FAST.memory_mb
    assert len(context["aws_request_id"]) == 36
    assert context["log_group_name"] == "/aws/lambda/townhall-WsConnectFunction"
    assert "[$LATEST]" in context["log_stream_name"]
    assert 0 < context["remaining_ms"] <= 1000


async def test_event_and_result_cross_a_json_boundary(cleanup: list[LocalLambdaRuntime]) -> None:
    event = {"items": (1, 2), "nested": {"a": 1}}
    result = await invoke(cleanup, "mutate_and_echo", event)
    # The tuple arrived as a list, and the handler's mutation did not reach the caller.
    assert result == {"items": [1, 2], "nested": {"a": 2}, "mutated": True}
    assert event == {"items": (1, 2), "nested": {"a": 1}}


async def test_decimal_results_become_numbers(cleanup: list[LocalLambdaRuntime]) -> None:
    assert await invoke(cleanup, "return_decimals", {}) == {"whole": 3, "part": 2.5}


async def test_unserializable_result_is_a_marshal_error(cleanup: list[LocalLambdaRuntime]) -> None:
    with pytest.raises(LambdaInvocationError) as failure:
        await invoke(cleanup, "return_a_set", {})
    assert failure.value.error_type == "Runtime.MarshalError"


async def test_exception_is_reported_with_its_type_and_message(
    cleanup: list[LocalLambdaRuntime],
) -> None:
    with pytest.raises(LambdaInvocationError) as failure:
        await invoke(cleanup, "raise_unauthorized", {})
    assert (failure.value.error_type, failure.value.error_message) == ("Exception", "Unauthorized")


async def test_timeout_fails_the_invocation(cleanup: list[LocalLambdaRuntime]) -> None:
    started = time.monotonic()
    with pytest.raises(LambdaInvocationError) as failure:
        await invoke(cleanup, "sleep", {"seconds": 1.5})
    assert failure.value.error_type == "Sandbox.Timedout"
    assert 0.9 < time.monotonic() - started < 1.4


async def test_queueing_does_not_count_against_the_timeout(
    cleanup: list[LocalLambdaRuntime],
) -> None:
    runtime = runtime_for("sleep", max_concurrency=1)
    cleanup.append(runtime)
    # Each call takes 0.6 s of a 1 s timeout; the second waits 0.6 s for the only thread.
    results = await asyncio.gather(
        runtime.invoke(FAST.logical_id, {"seconds": 0.6}),
        runtime.invoke(FAST.logical_id, {"seconds": 0.6}),
    )
    assert results == ["slept", "slept"]


@pytest.mark.parametrize(
    ("handler", "error_type"),
    [("no_such_function", "Runtime.HandlerNotFound")],
)
async def test_missing_handler(
    cleanup: list[LocalLambdaRuntime], handler: str, error_type: str
) -> None:
    with pytest.raises(LambdaInvocationError) as failure:
        await invoke(cleanup, handler, {})
    assert failure.value.error_type == error_type


async def test_missing_module_fails_at_invocation_not_before(
    cleanup: list[LocalLambdaRuntime],
) -> None:
    runtime = LocalLambdaRuntime(
        [FAST], handler_overrides={FAST.logical_id: "tests.twin.no_such_module.handler"}
    )
    cleanup.append(runtime)
    with pytest.raises(LambdaInvocationError) as failure:
        await runtime.invoke(FAST.logical_id, {})
    assert failure.value.error_type == "Runtime.ImportModuleError"


async def test_handlers_find_an_event_loop_like_on_lambdas_main_thread(
    cleanup: list[LocalLambdaRuntime],
) -> None:
    runtime = runtime_for("run_a_coroutine", max_concurrency=2)
    cleanup.append(runtime)
    results = await asyncio.gather(*(runtime.invoke(FAST.logical_id, {}) for _ in range(4)))
    assert results == ["ran"] * 4


def test_overrides_must_name_known_functions() -> None:
    with pytest.raises(ValueError, match="NoSuchFunction"):
        LocalLambdaRuntime([FAST], handler_overrides={"NoSuchFunction": "x.y"})


async def test_worker_processes_run_handlers_like_the_threads_do(
    cleanup: list[LocalLambdaRuntime], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-north-1")  # the workers get the twin's environment
    specs = [
        dataclasses.replace(spec, timeout_seconds=1)
        for spec in (functions.WS_CONNECT, functions.WS_DISCONNECT, functions.WS_AUTHORIZER)
    ]
    handlers = ("describe_process", "raise_unauthorized", "sleep")
    runtime = LocalLambdaRuntime(
        specs,
        handler_overrides={
            spec.logical_id: f"tests.twin.runtime_handlers.{name}"
            for spec, name in zip(specs, handlers, strict=True)
        },
        processes=2,
    )
    cleanup.append(runtime)
    described = await asyncio.gather(
        *(runtime.invoke(functions.WS_CONNECT.logical_id, {}) for _ in range(4))
    )
    assert {d["pid"] for d in described}.isdisjoint({os.getpid()})
    assert all(d["region"] == "eu-north-1" and d["loop"] == "ran" for d in described)
    assert all(d["function_name"] == "townhall-WsConnectFunction" for d in described)
    assert all(0 < d["remaining_ms"] <= 1000 for d in described)
    with pytest.raises(LambdaInvocationError) as failure:
        await runtime.invoke(functions.WS_DISCONNECT.logical_id, {})
    assert (failure.value.error_type, failure.value.error_message) == ("Exception", "Unauthorized")
    with pytest.raises(LambdaInvocationError) as failure:
        await runtime.invoke(functions.WS_AUTHORIZER.logical_id, {"seconds": 1.5})
    assert failure.value.error_type == "Sandbox.Timedout"


# -- observers ---------------------------------------------------------------------------------

OBSERVING: contextvars.ContextVar[str | None] = contextvars.ContextVar("observing", default=None)


def report_observing(event: Any, context: Any) -> dict[str, Any]:
    """A handler: what an observer's `started` set where the handler runs."""
    if event.get("fail"):
        raise RuntimeError("asked to fail")
    return {"observing": OBSERVING.get(), "thread": threading.get_ident(), "pid": os.getpid()}


class RecordingObserver:
    """Importable and picklable, so worker processes can have it too."""

    def __init__(self) -> None:
        self.observations: list[dict[str, Any]] = []

    def started(self, function: str, event: Any) -> tuple[str, contextvars.Token[str | None], int]:
        return function, OBSERVING.set(function), threading.get_ident()

    def finished(self, token: tuple[str, contextvars.Token[str | None], int]) -> dict[str, Any]:
        function, reset, thread = token
        OBSERVING.reset(reset)
        same_thread = thread == threading.get_ident()
        return {
            "function": function,
            "thread": thread,
            "same_thread": same_thread,
            "pid": os.getpid(),
        }

    def observed(self, observation: dict[str, Any]) -> None:
        self.observations.append(observation)


def observed_runtime(observer: RecordingObserver, processes: int = 0) -> LocalLambdaRuntime:
    return LocalLambdaRuntime(
        [FAST],
        handler_overrides={FAST.logical_id: f"{__name__}.report_observing"},
        observers=[observer],
        processes=processes,
    )


async def test_observers_bracket_each_invocation_on_its_thread(
    cleanup: list[LocalLambdaRuntime],
) -> None:
    observer = RecordingObserver()
    runtime = observed_runtime(observer)
    cleanup.append(runtime)
    result = await runtime.invoke(FAST.logical_id, {})
    with pytest.raises(LambdaInvocationError, match="asked to fail"):
        await runtime.invoke(FAST.logical_id, {"fail": True})

    assert result["observing"] == FAST.logical_id  # what `started` set, seen by the handler
    first, failed = observer.observations
    assert first == {
        "function": FAST.logical_id,
        "thread": result["thread"],
        "same_thread": True,
        "pid": os.getpid(),
    }
    assert failed["function"] == FAST.logical_id and failed["same_thread"]


async def test_observers_run_in_worker_processes_and_report_back(
    cleanup: list[LocalLambdaRuntime],
) -> None:
    observer = RecordingObserver()
    runtime = observed_runtime(observer, processes=1)
    cleanup.append(runtime)
    result = await runtime.invoke(FAST.logical_id, {})
    with pytest.raises(LambdaInvocationError, match="asked to fail"):
        await runtime.invoke(FAST.logical_id, {"fail": True})

    assert result["observing"] == FAST.logical_id and result["pid"] != os.getpid()
    first, failed = observer.observations  # observed here, from what the worker's copy saw
    assert first == {
        "function": FAST.logical_id,
        "thread": result["thread"],
        "same_thread": True,
        "pid": result["pid"],
    }
    assert failed["function"] == FAST.logical_id and failed["pid"] == result["pid"]
