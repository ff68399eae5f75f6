"""LocalLambdaRuntime: calls Townhall's Lambda handlers in-process, the way Lambda would.

What it keeps from Lambda:
- handlers are named by dotted path ("handlers.ws_connect.handler") and imported lazily, on
  first use, like a cold start; a module that fails to import fails every invocation;
- the event and the result cross a JSON boundary (Lambda passes nothing else), so a handler
  cannot return an object the real service could not serialize, nor keep a reference to the
  event the caller still holds;
- a context object with Lambda's attributes and a real `get_remaining_time_in_millis()`;
- the function's timeout: past it, the invocation fails as "Sandbox.Timedout".

What it cannot keep: a Python thread cannot be killed, so a handler past its timeout keeps
running in the background (its result is discarded) and holds a pool thread until it returns.
All functions share one process and one `os.environ`, so per-function environment variables
(AWS_LAMBDA_FUNCTION_NAME and friends) are not set.

With `processes=N` the handlers run in N worker processes instead (spawned, each with the
twin's environment and every handler imported up front, one invocation at a time, on the
process's main thread, as in a Lambda execution environment). The emulator (WebSocket loop,
management API) then no longer shares an interpreter lock with handler code, which is what
a benchmark wants. Handler overrides must then be importable in a fresh process and cannot
share state with the test that set them, so tests use the default, threads.

Invocations through the twin's Lambda Invoke API (`invoke_through_api`: a handler calling
another function synchronously, as the outbox consumer calls its slices) run on a pool of their
own, `invoke_concurrency` threads, and are never queued: when all are busy the API answers 429
TooManyRequestsException, as Lambda does at its concurrency limit, and the caller's SDK
retries. The caller holds one of the shared threads while it waits; if its callee queued for
the same threads, callers filling all of them would wait on callees that can never start. With
processes=N, and when some function declares `invokes`, they run in a second set of N worker
processes (started with the first): past N a call waits for a worker, its timeout running, and
past `invoke_concurrency` in flight it is refused with 429.

`observers` (InvocationObserver) are told when each handler starts and finishes, on the
thread (or in the worker process) that runs it: the one hook for watching invocations from
outside (the control-plane benchmarks time them through it). The runtime knows nothing of
what an observer measures.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import decimal
import importlib
import json
import logging
import multiprocessing
import os
import pickle
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from infra.twin.fake_aws import ACCOUNT_ID, REGION
from townhall.functions import FunctionSpec

log = logging.getLogger(__name__)

FUNCTION_NAME_PREFIX = "townhall-"
DEFAULT_MAX_CONCURRENCY = 16
# Invocations through the Invoke API at once (threads of their own; see the module docstring).
DEFAULT_INVOKE_CONCURRENCY = 64
WORKER_START_TIMEOUT_SECONDS = 120.0

Handler = Callable[[Any, Any], Any]


class InvocationObserver(Protocol):
    """Watches every invocation of a runtime's handlers; the twin itself installs none.

    `started` and `finished` run on the thread that runs the handler, just before it (and
    before its import on a cold start) and just after it, whatever the outcome: a context
    variable set in `started` is seen by everything the handler calls. What `finished` returns
    goes to `observed`, in the twin's process.

    With worker processes, each observer is pickled into every worker, where `started` and
    `finished` run; what `finished` returns travels back with the invocation's result, so it
    must pickle too. An observer that needs setting up in a worker does it when unpickled,
    which happens after the worker has the twin's environment and has imported the handlers.
    """

    def started(self, function: str, event: Any) -> Any:
        """`function` is the logical id; `event` the payload. Returns a token for `finished`."""
        ...

    def finished(self, token: Any) -> Any:
        """Returns what was observed of the invocation."""
        ...

    def observed(self, observation: Any) -> None: ...


class LambdaInvocationError(Exception):
    """An invocation failed: the handler raised, timed out, or returned something unusable.

    `error_type` and `error_message` are what Lambda would report (errorType, errorMessage);
    callers such as the API Gateway emulators turn this into an integration error.
    """

    def __init__(self, function_name: str, error_type: str, error_message: str) -> None:
        super().__init__(f"{function_name}: {error_type}: {error_message}")
        self.function_name = function_name
        self.error_type = error_type
        self.error_message = error_message


class LambdaThrottled(Exception):
    """Every thread (or worker) for Invoke API calls is busy: Lambda's 429
    TooManyRequestsException (Reason ConcurrentInvocationLimitExceeded), which SDKs retry."""


@dataclass
class LambdaContext:
    """The attributes of Lambda's Python context object that handlers and Powertools read."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_monotonic: float = field(repr=False)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline_monotonic - time.monotonic()) * 1000))


def function_name(spec: FunctionSpec) -> str:
    return FUNCTION_NAME_PREFIX + spec.logical_id


def _lambda_json_default(value: Any) -> Any:
    # Lambda's Python runtime writes a Decimal (what boto3's DynamoDB resource returns for
    # numbers) as a bare JSON number; do the same so the twin accepts what Lambda accepts.
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class LocalLambdaRuntime:
    """Invokes FunctionSpecs' handlers in a bounded thread pool, from an asyncio event loop.

    `handler_overrides` maps a function's logical id to another handler path, so tests can
    stand recording handlers in for the real ones.
    `fresh_import_packages` are dropped from `sys.modules` when the runtime is created, so
    their modules (and any clients they cache at import time) are imported anew, as on a
    new deployment. Only the Lambda entry modules (`handlers`) are dropped by default.
    """

    def __init__(
        self,
        functions: Iterable[FunctionSpec],
        *,
        handler_overrides: Mapping[str, str] | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        fresh_import_packages: Iterable[str] = ("handlers",),
        processes: int = 0,
        observers: Sequence[InvocationObserver] = (),
        invoke_concurrency: int = DEFAULT_INVOKE_CONCURRENCY,
    ) -> None:
        if invoke_concurrency < 1:
            raise ValueError("invoke_concurrency must be at least 1")
        self._specs = {spec.logical_id: spec for spec in functions}
        overrides = dict(handler_overrides or {})
        unknown = set(overrides) - set(self._specs)
        if unknown:
            raise ValueError(f"handler overrides for unknown functions: {sorted(unknown)}")
        self._handler_paths = {
            logical_id: overrides.get(logical_id, spec.handler)
            for logical_id, spec in self._specs.items()
        }
        self._handlers: dict[str, Handler] = {}
        self._observers = tuple(observers)
        self._thread_loops: list[asyncio.AbstractEventLoop] = []
        self._pool = ThreadPoolExecutor(
            max_workers=max_concurrency,
            thread_name_prefix="lambda",
            initializer=self._give_thread_an_event_loop,
        )
        # Invoke API calls: threads of their own, at most this many busy (never queued).
        self._api_pool = ThreadPoolExecutor(
            max_workers=invoke_concurrency,
            thread_name_prefix="lambda-invoke",
            initializer=self._give_thread_an_event_loop,
        )
        self._api_limit = invoke_concurrency
        self._api_busy = 0
        self._api_lock = threading.Lock()
        for package in fresh_import_packages:
            _forget_modules(package)
        self._workers: ProcessPoolExecutor | None = None
        self._api_workers: ProcessPoolExecutor | None = None
        if processes > 0:
            self._workers = self._start_workers(processes)
            # Only when some function calls another: a second set, so that callers filling
            # every worker never wait on callees queued behind them.
            # Past `processes` busy, a call waits for one of them (its timeout running), up to
            # `invoke_concurrency` in flight; a benchmark's slices then queue rather than fail.
            if any(spec.invokes for spec in self._specs.values()):
                self._api_workers = self._start_workers(processes)

    def _start_workers(self, processes: int) -> ProcessPoolExecutor:
        workers = ProcessPoolExecutor(
            max_workers=processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(
                list(sys.path),
                dict(os.environ),
                sorted(set(self._handler_paths.values())),
                # Pickled here and unpickled by the worker once it is set up (see
                # InvocationObserver), not by multiprocessing before the initializer runs.
                pickle.dumps(self._observers),
            ),
        )
        # Start every worker now (spawn, imports): the twin's start waits for it, and no
        # invocation pays it against its timeout.
        warming = [workers.submit(_warm_worker) for _ in range(processes)]
        concurrent.futures.wait(warming, timeout=WORKER_START_TIMEOUT_SECONDS)
        return workers

    def spec(self, logical_id: str) -> FunctionSpec:
        return self._specs[logical_id]

    def logical_ids(self) -> list[str]:
        return list(self._specs)

    def handler_path(self, logical_id: str) -> str:
        return self._handler_paths[logical_id]

    async def invoke(self, logical_id: str, event: Mapping[str, Any]) -> Any:
        """Run the function on `event` and return its JSON result.

        Raises LambdaInvocationError when the invocation fails in any way.
        """
        return await self._invoke(logical_id, event, self._pool, self._workers)

    async def invoke_through_api(self, logical_id: str, event: Any) -> Any:
        """Like `invoke`, for the Invoke API: on threads (or workers) of its own, so a handler
        waiting on another cannot starve it of a thread; raises LambdaThrottled when every
        one is busy, instead of queueing."""
        with self._api_lock:
            if self._api_busy >= self._api_limit:
                raise LambdaThrottled(function_name(self._specs[logical_id]))
            self._api_busy += 1
        try:
            return await self._invoke(logical_id, event, self._api_pool, self._api_workers)
        finally:
            with self._api_lock:
                self._api_busy -= 1

    async def _invoke(
        self,
        logical_id: str,
        event: Any,
        pool: ThreadPoolExecutor,
        workers: ProcessPoolExecutor | None,
    ) -> Any:
        spec = self._specs[logical_id]
        name = function_name(spec)
        try:
            payload = json.loads(json.dumps(event))
        except (TypeError, ValueError) as exc:  # a bug in the emulator, not in the handler
            raise LambdaInvocationError(name, "InvalidRequestContentException", str(exc)) from exc
        context = self._new_context(spec)
        if workers is not None:
            return await self._invoke_in_worker(workers, logical_id, payload, context)
        loop = asyncio.get_running_loop()
        running = asyncio.Event()

        def mark_running() -> None:
            # RuntimeError: the loop closed while the invocation was queued.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(running.set)

        future = loop.run_in_executor(pool, self._call, logical_id, payload, context, mark_running)
        # The timeout counts from when the handler starts, not from when the invocation was
        # queued: Lambda would have scaled out rather than queue it behind a busy pool.
        wait_running = asyncio.ensure_future(running.wait())
        await asyncio.wait({future, wait_running}, return_when=asyncio.FIRST_COMPLETED)
        wait_running.cancel()
        started = time.monotonic()
        try:
            result = await asyncio.wait_for(future, timeout=spec.timeout_seconds)
        except TimeoutError as exc:
            message = f"Task timed out after {spec.timeout_seconds:.2f} seconds"
            log.error("%s RequestId: %s %s", name, context.aws_request_id, message)
            raise LambdaInvocationError(name, "Sandbox.Timedout", message) from exc
        finally:
            log.debug(
                "REPORT %s RequestId: %s Duration: %.2f ms",
                name,
                context.aws_request_id,
                (time.monotonic() - started) * 1000,
            )
        return result

    async def _invoke_in_worker(
        self, workers: ProcessPoolExecutor, logical_id: str, payload: Any, context: LambdaContext
    ) -> Any:
        spec = self._specs[logical_id]
        name = context.function_name
        future = asyncio.get_running_loop().run_in_executor(
            workers,
            _call_in_worker,
            logical_id,
            self._handler_paths[logical_id],
            payload,
            context,
            spec.timeout_seconds,
        )
        try:
            # Counted from submission: the workers import every handler up front, and an
            # invocation waits for a free worker only when all N are busy.
            outcome, value, observations = await asyncio.wait_for(future, spec.timeout_seconds)
        except TimeoutError as exc:
            message = f"Task timed out after {spec.timeout_seconds:.2f} seconds"
            log.error("%s RequestId: %s %s", name, context.aws_request_id, message)
            raise LambdaInvocationError(name, "Sandbox.Timedout", message) from exc
        # Empty when the handler never ran (it could not be imported).
        for observer, observation in zip(self._observers, observations, strict=False):
            observer.observed(observation)
        if outcome == "error":
            error_type, error_message = value
            raise LambdaInvocationError(name, error_type, error_message)
        return json.loads(value)

    def close(self) -> None:
        # Do not wait: a handler stuck past its timeout must not hang the twin's shutdown.
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._api_pool.shutdown(wait=False, cancel_futures=True)
        for workers in (self._workers, self._api_workers):
            if workers is None:
                continue
            processes = list(getattr(workers, "_processes", {}).values())
            workers.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.join(2)
                if process.is_alive():  # a handler stuck past its timeout
                    process.terminate()
        for loop in self._thread_loops:
            if not loop.is_running():  # one still running belongs to a stuck handler
                loop.close()

    def _give_thread_an_event_loop(self) -> None:
        # Lambda runs a handler on the interpreter's main thread, where
        # asyncio.get_event_loop() hands out a loop; Mangum relies on that. A pool thread has
        # none unless given one.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._thread_loops.append(loop)

    # -- inside the pool thread -----------------------------------------------------------

    def _call(
        self,
        logical_id: str,
        payload: Any,
        context: LambdaContext,
        mark_running: Callable[[], None],
    ) -> Any:
        if not self._observers:
            return self._run(logical_id, payload, context, mark_running)
        tokens = [observer.started(logical_id, payload) for observer in self._observers]
        try:
            return self._run(logical_id, payload, context, mark_running)
        finally:
            for observer, token in zip(self._observers, tokens, strict=True):
                observer.observed(observer.finished(token))

    def _run(
        self,
        logical_id: str,
        payload: Any,
        context: LambdaContext,
        mark_running: Callable[[], None],
    ) -> Any:
        name = context.function_name
        try:
            # The import (Lambda's init phase) is not part of the handler's timeout.
            handler = self._resolve(logical_id, name)
        finally:
            context.deadline_monotonic = time.monotonic() + self._specs[logical_id].timeout_seconds
            mark_running()
        try:
            result = handler(payload, context)
        except Exception as exc:
            log.exception("%s RequestId: %s failed", name, context.aws_request_id)
            raise LambdaInvocationError(name, type(exc).__name__, str(exc)) from exc
        try:
            return json.loads(json.dumps(result, default=_lambda_json_default))
        except (TypeError, ValueError) as exc:
            log.error("%s returned a result that is not JSON: %s", name, exc)
            raise LambdaInvocationError(name, "Runtime.MarshalError", str(exc)) from exc

    def _resolve(self, logical_id: str, name: str) -> Handler:
        handler = self._handlers.get(logical_id)
        if handler is not None:
            return handler
        path = self._handler_paths[logical_id]
        module_name, _, attribute = path.rpartition(".")
        try:
            module = importlib.import_module(module_name)
            handler = getattr(module, attribute)
        except Exception as exc:
            # Lambda retries the init on the next invocation, so do not cache the failure.
            log.exception("%s: cannot import handler %s", name, path)
            error_type = (
                "Runtime.HandlerNotFound"
                if isinstance(exc, AttributeError)
                else "Runtime.ImportModuleError"
            )
            raise LambdaInvocationError(
                name, error_type, f"Unable to import {path}: {exc}"
            ) from exc
        if not callable(handler):
            raise LambdaInvocationError(name, "Runtime.HandlerNotFound", f"{path} is not callable")
        self._handlers[logical_id] = handler
        return handler

    def _new_context(self, spec: FunctionSpec) -> LambdaContext:
        name = function_name(spec)
        request_id = str(uuid.uuid4())
        today = time.strftime("%Y/%m/%d", time.gmtime())
        return LambdaContext(
            function_name=name,
            function_version="$LATEST",
            invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}",
            memory_limit_in_mb=spec.memory_mb,
            aws_request_id=request_id,
            log_group_name=f"/aws/lambda/{name}",
            log_stream_name=f"{today}/[$LATEST]{uuid.uuid4().hex}",
            deadline_monotonic=time.monotonic() + spec.timeout_seconds,
        )


def _forget_modules(package: str) -> None:
    for module_name in list(sys.modules):
        if module_name == package or module_name.startswith(package + "."):
            del sys.modules[module_name]


# -- worker processes (processes=N) -------------------------------------------------------------

_worker_handlers: dict[str, Handler] = {}
_worker_observers: tuple[InvocationObserver, ...] = ()


def _init_worker(
    path: list[str], environment: dict[str, str], handler_paths: list[str], observers: bytes
) -> None:
    global _worker_observers
    sys.path[:] = path
    os.environ.clear()
    os.environ.update(environment)
    # The handler runs on this process's main thread, as in Lambda; Mangum asks for its loop.
    asyncio.set_event_loop(asyncio.new_event_loop())
    for handler_path in handler_paths:  # the init phase, before the first invocation
        with contextlib.suppress(Exception):  # a failure is reported by the invocation
            _worker_handler(handler_path)
    _worker_observers = pickle.loads(observers)


def _warm_worker() -> int:
    # Long enough that each of the N warm-up calls lands on a worker of its own.
    time.sleep(0.2)
    return os.getpid()


def _worker_handler(handler_path: str) -> Handler:
    handler = _worker_handlers.get(handler_path)
    if handler is None:
        module_name, _, attribute = handler_path.rpartition(".")
        handler = getattr(importlib.import_module(module_name), attribute)
        if not callable(handler):
            raise TypeError(f"{handler_path} is not callable")
        _worker_handlers[handler_path] = handler
    return handler


def _call_in_worker(
    logical_id: str, handler_path: str, payload: Any, context: LambdaContext, timeout: float
) -> tuple[str, Any, list[Any]]:
    """("ok", the result as JSON text, observations) or ("error", (type, message), observations);
    one observation per observer, what its `finished` returned (none if the handler never ran)."""
    name = context.function_name
    try:
        handler = _worker_handler(handler_path)
    except Exception as exc:
        log.exception("%s: cannot import handler %s", name, handler_path)
        error_type = (
            "Runtime.HandlerNotFound"
            if isinstance(exc, AttributeError | TypeError)
            else "Runtime.ImportModuleError"
        )
        return "error", (error_type, f"Unable to import {handler_path}: {exc}"), []
    context.deadline_monotonic = time.monotonic() + timeout
    observers = _worker_observers
    tokens = [observer.started(logical_id, payload) for observer in observers]
    try:
        try:
            result = handler(payload, context)
        finally:
            observations = [
                observer.finished(token) for observer, token in zip(observers, tokens, strict=True)
            ]
    except Exception as exc:
        log.exception("%s RequestId: %s failed", name, context.aws_request_id)
        return "error", (type(exc).__name__, str(exc)), observations
    try:
        return "ok", json.dumps(result, default=_lambda_json_default), observations
    except (TypeError, ValueError) as exc:
        log.error("%s returned a result that is not JSON: %s", name, exc)
        return "error", ("Runtime.MarshalError", str(exc)), observations
