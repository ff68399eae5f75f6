"""The instance metadata service (IMDSv2), from the node: who am I, and am I being terminated?

- :class:`ImdsClient` reads metadata with a session token (``PUT /latest/api/token`` with a TTL
  header, then ``GET`` with the token header). The token is reused until shortly before its TTL
  ends, and fetched again at once when IMDS answers 401. Every request has a bounded timeout and
  ignores proxy settings (IMDS is link-local).
- :class:`TerminationWatcher` polls ``autoscaling/target-lifecycle-state`` on a daemon thread.
  When Auto Scaling moves the instance to ``Terminating:Wait`` that reads ``Terminated``, and the
  watcher calls its callback exactly once: the supervisor starts the same drain as on SIGTERM,
  which ends by completing the lifecycle action. Errors are logged and retried; nothing here
  ever raises into the node.
- ``python -m media_fleet.service.imds instance-id|local-ipv4|public-ipv4|lifecycle-state``
  prints one value (the systemd unit's start script passes them to the node as flags).

The base URL defaults to ``AWS_EC2_METADATA_SERVICE_ENDPOINT`` (botocore's variable) or
``http://169.254.169.254``, so tests and a laptop can point it at a local server.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence

from media_fleet.service.settings import NodeSettings

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://169.254.169.254"
ENDPOINT_ENV = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
TOKEN_PATH = "/latest/api/token"
TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
META = "meta-data/"
LIFECYCLE_STATE = "autoscaling/target-lifecycle-state"
TERMINATED = "Terminated"

DEFAULT_TOKEN_TTL_SECONDS = 21600  # the most IMDS grants (6 h)
TOKEN_REFRESH_MARGIN_SECONDS = 60.0
DEFAULT_TIMEOUT_SECONDS = 2.0
DEFAULT_POLL_SECONDS = 5.0
# A failing IMDS is logged at WARNING on the first failure and then once per this many polls.
WARN_EVERY_FAILURES = 60
AUTO = "auto"


class ImdsError(Exception):
    """IMDS did not answer, or answered something other than 200 or 404."""


def default_base_url() -> str:
    return os.environ.get(ENDPOINT_ENV) or DEFAULT_BASE_URL


class ImdsClient:
    """A small, blocking IMDSv2 client (urllib, no proxies, bounded timeouts)."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        token_ttl_seconds: int = DEFAULT_TOKEN_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= token_ttl_seconds <= DEFAULT_TOKEN_TTL_SECONDS:
            raise ValueError("an IMDS token lives 1 to 21600 seconds")
        self.base_url = (base_url or default_base_url()).rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.token_ttl_seconds = token_ttl_seconds
        self._clock = clock
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._lock = threading.Lock()
        self._token: str | None = None
        self._token_good_until = 0.0

    # -- token ---------------------------------------------------------------------------------

    def _fresh_token(self) -> str:
        request = urllib.request.Request(
            self.base_url + TOKEN_PATH,
            method="PUT",
            headers={TOKEN_TTL_HEADER: str(self.token_ttl_seconds)},
        )
        started = self._clock()
        try:
            with self._opener.open(request, timeout=self.timeout_seconds) as response:
                token = response.read().decode().strip()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ImdsError(f"IMDS token request failed: {exc}") from exc
        if not token:
            raise ImdsError("IMDS returned an empty token")
        ttl = float(self.token_ttl_seconds)
        # Renew a minute early (or halfway through a short TTL): a request must never carry a
        # token that expires on its way.
        self._token_good_until = started + max(ttl - TOKEN_REFRESH_MARGIN_SECONDS, ttl / 2)
        self._token = token
        return token

    def _current_token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._token_good_until:
                return self._fresh_token()
            return self._token

    def _drop_token(self, token: str) -> None:
        with self._lock:
            if self._token == token:
                self._token = None

    # -- reads ---------------------------------------------------------------------------------

    def get(self, path: str) -> str | None:
        """GET ``/latest/<path>``'s text; None on 404. A 401 (the token expired or was revoked)
        fetches a new token and tries once more. Raises :class:`ImdsError` otherwise."""
        url = f"{self.base_url}/latest/{path.lstrip('/')}"
        for attempt in (1, 2):
            token = self._current_token()
            request = urllib.request.Request(url, headers={TOKEN_HEADER: token})
            try:
                with self._opener.open(request, timeout=self.timeout_seconds) as response:
                    return str(response.read().decode().strip())
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    return None
                if exc.code == 401 and attempt == 1:
                    self._drop_token(token)
                    continue
                raise ImdsError(f"IMDS GET {path}: HTTP {exc.code}") from exc
            except (urllib.error.URLError, OSError, ValueError) as exc:
                raise ImdsError(f"IMDS GET {path} failed: {exc}") from exc
        raise ImdsError(f"IMDS GET {path}: refused a fresh token")  # pragma: no cover

    def meta(self, name: str) -> str | None:
        return self.get(META + name)

    def _required(self, name: str) -> str:
        value = self.meta(name)
        if not value:
            raise ImdsError(f"IMDS has no {name}")
        return value

    def instance_id(self) -> str:
        return self._required("instance-id")

    def local_ipv4(self) -> str:
        return self._required("local-ipv4")

    def public_ipv4(self) -> str | None:
        """None when the instance has no public IPv4 address (IMDS answers 404)."""
        return self.meta("public-ipv4") or None

    def target_lifecycle_state(self) -> str | None:
        """``InService``, ``Terminated``, ...; None outside an Auto Scaling group."""
        return self.meta(LIFECYCLE_STATE)


class TerminationWatcher:
    """Polls the Auto Scaling target lifecycle state; calls ``on_terminated`` once on
    ``Terminated``, from the watcher's thread. Never raises into the caller."""

    def __init__(
        self,
        on_terminated: Callable[[], None],
        *,
        client: ImdsClient | None = None,
        base_url: str | None = None,
        interval_seconds: float = DEFAULT_POLL_SECONDS,
    ) -> None:
        self.client = client or ImdsClient(base_url)
        self.interval_seconds = interval_seconds
        self._on_terminated = on_terminated
        self._stop = threading.Event()
        self._fired = threading.Event()
        self._fire_lock = threading.Lock()
        self._failures = 0
        self._thread: threading.Thread | None = None
        self.last_state: str | None = None

    @property
    def fired(self) -> bool:
        return self._fired.is_set()

    def wait_fired(self, timeout: float | None = None) -> bool:
        return self._fired.wait(timeout)

    def poll_once(self) -> bool:
        """Read the state once; fire when it is ``Terminated``. True once fired."""
        if self._fired.is_set():
            return True
        try:
            state = self.client.target_lifecycle_state()
        except Exception as exc:
            self._failures += 1
            level = logging.WARNING if self._failures % WARN_EVERY_FAILURES == 1 else logging.DEBUG
            log.log(
                level, "reading the lifecycle state failed (%d in a row): %s", self._failures, exc
            )
            return False
        if self._failures:
            log.info("IMDS answers again after %d failures", self._failures)
            self._failures = 0
        if state != self.last_state:
            log.info("Auto Scaling target lifecycle state: %s", state)
            self.last_state = state
        if state == TERMINATED:
            self._fire()
            return True
        return False

    def _fire(self) -> None:
        with self._fire_lock:
            if self._fired.is_set():
                return
            self._fired.set()
        log.warning("Auto Scaling is terminating this instance: draining")
        try:
            self._on_terminated()
        except Exception:
            log.exception("the termination callback failed")

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.poll_once():
                return
            self._stop.wait(self.interval_seconds)

    def start(self) -> TerminationWatcher:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="imds-watcher", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 0.0) -> None:
        """Stop polling. Waits up to ``timeout`` for the thread (a daemon): by default not at
        all, so an event loop never blocks on a request in flight."""
        self._stop.set()
        thread = self._thread
        if timeout > 0 and thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


def start_termination_watcher(
    settings: NodeSettings,
    loop: asyncio.AbstractEventLoop,
    on_terminated: Callable[[], object],
    *,
    base_url: str | None = None,
    interval_seconds: float = DEFAULT_POLL_SECONDS,
) -> TerminationWatcher | None:
    """Watch for the termination hook when the node runs in an Auto Scaling group (both
    ``--asg-name`` and ``--instance-id`` given); ``on_terminated`` then runs on ``loop``.
    Returns None elsewhere (a laptop, the twin)."""
    if not (settings.asg_name and settings.instance_id):
        return None

    def call_on_loop() -> None:
        loop.call_soon_threadsafe(on_terminated)

    watcher = TerminationWatcher(call_on_loop, base_url=base_url, interval_seconds=interval_seconds)
    return watcher.start()


def resolve_auto(settings: NodeSettings, client: ImdsClient | None = None) -> NodeSettings:
    """Settings with every ``auto`` filled in from IMDS: ``--node-id``/``--instance-id`` (the
    instance id), ``--control-host`` and ``--ice-host`` (the private IPv4), and
    ``--announced-host`` (the public IPv4). Settings without ``auto`` come back unchanged."""
    fields = (
        settings.node_id,
        settings.instance_id,
        settings.control_host,
        settings.announced_host,
    )
    if AUTO not in fields and AUTO not in settings.ice_hosts:
        return settings
    imds = client or ImdsClient()
    cache: dict[str, str] = {}

    def read(name: str, fetch: Callable[[], str | None]) -> str:
        if name not in cache:
            value = fetch()
            if not value:
                raise ImdsError(f"IMDS has no {name}")
            cache[name] = value
        return cache[name]

    def instance() -> str:
        return read("instance-id", imds.instance_id)

    def private() -> str:
        return read("local-ipv4", imds.local_ipv4)

    def public() -> str:
        return read("public-ipv4", imds.public_ipv4)

    return dataclasses.replace(
        settings,
        node_id=instance() if settings.node_id == AUTO else settings.node_id,
        instance_id=instance() if settings.instance_id == AUTO else settings.instance_id,
        control_host=private() if settings.control_host == AUTO else settings.control_host,
        announced_host=public() if settings.announced_host == AUTO else settings.announced_host,
        ice_hosts=tuple(private() if h == AUTO else h for h in settings.ice_hosts),
    )


READERS: dict[str, Callable[[ImdsClient], str | None]] = {
    "instance-id": ImdsClient.instance_id,
    "local-ipv4": ImdsClient.local_ipv4,
    "public-ipv4": ImdsClient.public_ipv4,
    "lifecycle-state": ImdsClient.target_lifecycle_state,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Print one metadata value; exit 1 when IMDS has none after the retries."""
    p = argparse.ArgumentParser(prog="python -m media_fleet.service.imds")
    p.add_argument("what", choices=sorted(READERS))
    p.add_argument(
        "--base-url", default=None, help=f"default: ${ENDPOINT_ENV} or {DEFAULT_BASE_URL}"
    )
    p.add_argument("--attempts", type=int, default=10)
    p.add_argument("--retry-seconds", type=float, default=1.0)
    args = p.parse_args(argv)
    client = ImdsClient(args.base_url)
    error: Exception | None = None
    for attempt in range(max(1, args.attempts)):
        if attempt:
            time.sleep(args.retry_seconds)
        try:
            value = READERS[args.what](client)
        except ImdsError as exc:
            error = exc
            continue
        if value:
            print(value)
            return 0
        error = ImdsError(f"IMDS has no {args.what}")
        break
    print(f"imds: {error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
