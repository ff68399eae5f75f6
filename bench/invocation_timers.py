"""Where each Lambda invocation's time goes in the twin, for the control-plane benchmarks.

:class:`InvocationTimers` observes the twin's Lambda runtime
(``infra.twin.lambda_runtime.InvocationObserver``, passed in
``TwinOptions.invocation_observers``) and, once ``install()``-ed, times three boundaries of
every invocation:

- the invocation: from the event's request time to the handler's start (queued behind the
  twin's Lambda threads: the emulator's part), then the handler's own duration;
- each DynamoDB HTTP round trip (botocore's ``Endpoint._send``: moto's time plus loopback;
  botocore's request building and parsing stay on our side, as they would in Lambda);
- each @connections call from the notifier (``post_many``, ``disconnect``): the posting client
  and the emulator serving the posts.

What remains of the handler's duration is our code: parsing, logic, botocore on the client
side, logging and metrics. The handler threads share one interpreter lock, so a wall-clock
share under load also contains waiting for the lock held by another thread.
"""

from __future__ import annotations

import contextvars
import threading
import time
from dataclasses import dataclass
from typing import Any

from infra.twin.fake_aws import now_ms


@dataclass
class InvocationTiming:
    function: str
    route: str
    started: float  # time.perf_counter() at the handler's start
    queued_ms: float = 0.0
    duration_ms: float = 0.0
    dynamodb_ms: float = 0.0
    dynamodb_calls: int = 0
    posts_ms: float = 0.0
    post_batches: int = 0

    @property
    def ours_ms(self) -> float:
        return max(0.0, self.duration_ms - self.dynamodb_ms - self.posts_ms)


def route_of(payload: Any) -> str:
    context = payload.get("requestContext", {}) if isinstance(payload, dict) else {}
    if "http" in context:
        return f"{context['http'].get('method', '')} {payload.get('rawPath', '')}"
    return str(context.get("routeKey") or context.get("eventType") or "authorizer")


class InvocationTimers:
    """The runtime's observer. `install()` patches the DynamoDB and @connections boundaries
    process-wide; `take()` returns and clears the timings; `uninstall()` restores them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # A context variable, not a thread-local: FastAPI runs sync endpoints on anyio's
        # worker threads, which copy the context of the Lambda thread that started them.
        self._current: contextvars.ContextVar[InvocationTiming | None] = contextvars.ContextVar(
            "invocation_timing", default=None
        )
        self._timings: list[InvocationTiming] = []
        self._originals: list[tuple[Any, str, Any]] = []

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        # The runtime pickles its observers into its worker processes: each gets timers of
        # its own, timing the boundaries there; its timings come back through `observed`.
        return _timers_in_a_worker, ()

    # -- the runtime's observer -----------------------------------------------------------

    def started(self, function: str, event: Any) -> tuple[InvocationTiming, Any]:
        timing = InvocationTiming(function, route_of(event), time.perf_counter())
        request_epoch = _request_epoch_ms(event)
        if request_epoch:
            timing.queued_ms = max(0.0, now_ms() - request_epoch)
        return timing, self._current.set(timing)

    def finished(self, token: tuple[InvocationTiming, Any]) -> InvocationTiming:
        timing, reset = token
        timing.duration_ms = (time.perf_counter() - timing.started) * 1000
        self._current.reset(reset)
        return timing

    def observed(self, observation: InvocationTiming) -> None:
        with self._lock:
            self._timings.append(observation)

    # -- the benchmark's side -------------------------------------------------------------

    def take(self) -> list[InvocationTiming]:
        with self._lock:
            taken, self._timings = self._timings, []
        return taken

    def install(self) -> None:
        """Time the DynamoDB and @connections calls of the invocation being observed."""
        if self._originals:
            return
        import botocore.endpoint

        from townhall.notifier import ConnectionNotifier

        current = self._current
        send = botocore.endpoint.Endpoint._send  # type: ignore[attr-defined]

        def timed_send(endpoint: Any, request: Any) -> Any:
            started = time.perf_counter()
            try:
                return send(endpoint, request)
            finally:
                timing = current.get()
                if timing is not None:
                    timing.dynamodb_ms += (time.perf_counter() - started) * 1000
                    timing.dynamodb_calls += 1

        def timed(original: Any) -> Any:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    timing = current.get()
                    if timing is not None:
                        timing.posts_ms += (time.perf_counter() - started) * 1000
                        timing.post_batches += 1

            return wrapper

        self._patch(botocore.endpoint.Endpoint, "_send", timed_send)
        self._patch(ConnectionNotifier, "post_many", timed(ConnectionNotifier.post_many))
        self._patch(ConnectionNotifier, "disconnect", timed(ConnectionNotifier.disconnect))

    def uninstall(self) -> None:
        while self._originals:
            owner, name, original = self._originals.pop()
            setattr(owner, name, original)

    def _patch(self, owner: Any, name: str, replacement: Any) -> None:
        self._originals.append((owner, name, getattr(owner, name)))
        setattr(owner, name, replacement)


def _timers_in_a_worker() -> InvocationTimers:
    timers = InvocationTimers()
    timers.install()  # the worker process lives as long as the runtime: never uninstalled
    return timers


def _request_epoch_ms(payload: Any) -> int:
    """When API Gateway received the request (ms), as the event says."""
    if not isinstance(payload, dict):
        return 0
    context = payload.get("requestContext", {})
    value = context.get("requestTimeEpoch") or context.get("timeEpoch") or 0
    return int(value) if isinstance(value, int | float) else 0


def _route_pattern(route: str) -> str:
    """ "POST /api/meetings/abc123/join" -> "POST /api/meetings/{id}/join"."""
    parts = route.split("/")
    return "/".join(
        "{id}" if i > 0 and parts[i - 1] == "meetings" else part for i, part in enumerate(parts)
    )


def summarize(timings: list[InvocationTiming]) -> dict[str, dict[str, float]]:
    """Per route: invocations and the mean of each part, in ms."""
    by_route: dict[str, list[InvocationTiming]] = {}
    for timing in timings:
        by_route.setdefault(_route_pattern(timing.route), []).append(timing)
    summary: dict[str, dict[str, float]] = {}
    for route, group in sorted(by_route.items()):
        n = len(group)
        summary[route] = {
            "invocations": n,
            "queued_ms": round(sum(t.queued_ms for t in group) / n, 1),
            "duration_ms": round(sum(t.duration_ms for t in group) / n, 1),
            "dynamodb_ms": round(sum(t.dynamodb_ms for t in group) / n, 1),
            "dynamodb_calls": round(sum(t.dynamodb_calls for t in group) / n, 1),
            "posts_ms": round(sum(t.posts_ms for t in group) / n, 1),
            "ours_ms": round(sum(t.ours_ms for t in group) / n, 1),
        }
    return summary
