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
"""

from __future__ import annotations

import asyncio
import contextlib
import decimal
import importlib
import json
import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from infra.twin.fake_aws import ACCOUNT_ID, REGION
from townhall.functions import FunctionSpec

log = logging.getLogger(__name__)

FUNCTION_NAME_PREFIX = "townhall-"
DEFAULT_MAX_CONCURRENCY = 16

Handler = Callable[[Any, Any], Any]


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
    ) -> None:
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
        self._thread_loops: list[asyncio.AbstractEventLoop] = []
        self._pool = ThreadPoolExecutor(
            max_workers=max_concurrency,
            thread_name_prefix="lambda",
            initializer=self._give_thread_an_event_loop,
        )
        for package in fresh_import_packages:
            _forget_modules(package)

    def spec(self, logical_id: str) -> FunctionSpec:
        return self._specs[logical_id]

    def handler_path(self, logical_id: str) -> str:
        return self._handler_paths[logical_id]

    async def invoke(self, logical_id: str, event: Mapping[str, Any]) -> Any:
        """Run the function on `event` and return its JSON result.

        Raises LambdaInvocationError when the invocation fails in any way.
        """
        spec = self._specs[logical_id]
        name = function_name(spec)
        try:
            payload = json.loads(json.dumps(event))
        except (TypeError, ValueError) as exc:  # a bug in the emulator, not in the handler
            raise LambdaInvocationError(name, "InvalidRequestContentException", str(exc)) from exc
        context = self._new_context(spec)
        loop = asyncio.get_running_loop()
        running = asyncio.Event()

        def mark_running() -> None:
            # RuntimeError: the loop closed while the invocation was queued.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(running.set)

        future = loop.run_in_executor(
            self._pool, self._call, logical_id, payload, context, mark_running
        )
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

    def close(self) -> None:
        # Do not wait: a handler stuck past its timeout must not hang the twin's shutdown.
        self._pool.shutdown(wait=False, cancel_futures=True)
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
