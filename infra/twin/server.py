"""LocalTwin: Townhall's AWS topology on one machine, on loopback.

    with LocalTwin.start(tmp_path) as twin:          # sync or async code alike
        httpx.get(twin.base_url + "/api/health")
        websockets.connect(twin.ws_url + "?meeting=...", subprotocols=["townhall", token])

Starting a twin starts LocalDynamoDB (restoring the data folder), sets the handlers'
environment, starts the stream pollers (event_source.py: Lambda's event source mappings, read
from the end of each stream as it is after the restore), and serves the router (web app, HTTP
API, WebSocket API, management API, Lambda's Invoke API) from one uvicorn server on its own
thread and event loop, so blocking test code and async test code can both talk to it.
Stopping stops the pollers, closes every socket (each one's `$disconnect` runs), stops the
server, snapshots the tables and restores the environment.

moto's state and `os.environ` belong to the whole process, so only one twin may run at a
time in a process; starting a second one raises.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import uvicorn

from infra.twin import log_redaction, ports
from infra.twin.connections import ConnectionRegistry
from infra.twin.dynamodb import DEFAULT_SNAPSHOT_INTERVAL_SECONDS, LocalDynamoDB
from infra.twin.event_source import EventSources
from infra.twin.fake_aws import fake_session
from infra.twin.handler_env import EnvironmentPatch, handler_environment
from infra.twin.http_api import HttpApi
from infra.twin.lambda_api import LambdaApi
from infra.twin.lambda_runtime import (
    DEFAULT_INVOKE_CONCURRENCY,
    DEFAULT_MAX_CONCURRENCY,
    InvocationObserver,
    LocalLambdaRuntime,
)
from infra.twin.management_api import ManagementApi
from infra.twin.media_nodes import LocalMediaNode, start_media_nodes
from infra.twin.queues import QueueSources, create_queues
from infra.twin.router import TwinRouter
from infra.twin.static_site import StaticSite
from infra.twin.turn import LocalTurnServer
from infra.twin.uvicorn_ws import GatewayWebSocketProtocol
from infra.twin.websocket_api import WebSocketApi, WebSocketLimits
from townhall import clock, functions, routes
from townhall.functions import (
    ALL_FUNCTIONS,
    ALL_QUEUE_SOURCES,
    ALL_QUEUES,
    ALL_STREAM_SOURCES,
    FunctionSpec,
    QueueSourceSpec,
    StreamSourceSpec,
)
from townhall.store import organisation_migration
from townhall.store.migrations import migrate

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_SECONDS = 30.0
SHUTDOWN_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class TwinOptions:
    """Everything about a twin that is not where it lives (data folder, host, port)."""

    # API Gateway's WebSocket limits; shorten them to test expiry.
    idle_timeout_seconds: float = 10 * 60
    max_connection_seconds: float = 2 * 60 * 60
    # Skip $disconnect for sockets that dropped without a close frame (AWS: best effort).
    lose_abrupt_disconnects: bool = False
    # Function logical id -> handler path ("tests.twin.sample_handlers.ws_connect").
    handler_overrides: Mapping[str, str] = field(default_factory=dict)
    # The functions to serve; replace one (dataclasses.replace) to change e.g. its timeout.
    functions: tuple[FunctionSpec, ...] = ALL_FUNCTIONS
    # SFU node processes to run (`python -m media_fleet`), registered in MediaNodes.
    media_nodes: int = 0
    # Run coturn (Debian's turnserver) and hand its URLs and credentials out with media
    # grants (infra/twin/turn.py).
    turn: bool = False
    web_dir: Path = REPO_ROOT / "web"
    snapshot_interval_seconds: float = DEFAULT_SNAPSHOT_INTERVAL_SECONDS
    lambda_concurrency: int = DEFAULT_MAX_CONCURRENCY
    # Invocations through the twin's Lambda Invoke API at once, on threads of their own (past
    # that: 429, which the caller's SDK retries); see lambda_runtime.py.
    lambda_invoke_concurrency: int = DEFAULT_INVOKE_CONCURRENCY
    # The streams polled into functions (Lambda's event source mappings); () for none.
    stream_sources: tuple[StreamSourceSpec, ...] = ALL_STREAM_SOURCES
    # The queues polled into functions (Lambda's SQS event source mappings); () for none.
    queue_sources: tuple[QueueSourceSpec, ...] = ALL_QUEUE_SOURCES
    # Webhooks to receivers on loopback (and over plain http): the twin's own receivers. AWS
    # never has this (townhall.webhooks.destination).
    webhook_allow_loopback: bool = True
    # The clock seam of the webhook retry schedule: 1 runs it in real time (27 hours); tests
    # run it in a second or two (townhall.webhooks.schedule).
    webhook_retry_time_scale: float = 1.0
    # Seconds a webhook attempt may take (None: the default, 10).
    webhook_timeout_seconds: float | None = None
    # Run the handlers in this many worker processes instead of threads (0: threads). For
    # benchmarks: the emulator then has an interpreter to itself. See lambda_runtime.py.
    lambda_processes: int = 0
    # Told of every handler invocation (see lambda_runtime.InvocationObserver): how the
    # control-plane benchmarks time them. The twin itself installs none.
    invocation_observers: tuple[InvocationObserver, ...] = ()
    max_in_flight_per_connection: int = 10
    access_log: bool = False
    # What API Gateway checks before the authorizer runs (Townhall's: the subprotocol header);
    # the emulator's own tests use sample handlers that read a query parameter instead.
    ws_identity_source: str = routes.IDENTITY_SOURCE


_running_lock = threading.Lock()
_running: LocalTwin | None = None


class LocalTwin:
    """A running twin. Create it with `LocalTwin.start(...)`; stop it with `stop()` or `with`."""

    def __init__(self, data_dir: Path, host: str, options: TwinOptions) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.host = host
        self.options = options
        self.port = 0
        self.dynamodb = LocalDynamoDB(
            self.data_dir, host=host, snapshot_interval_seconds=options.snapshot_interval_seconds
        )
        self.registry = ConnectionRegistry()
        self._environment = EnvironmentPatch()
        self._runtime: LocalLambdaRuntime | None = None
        self._event_sources: EventSources | None = None
        self._queue_sources: QueueSources | None = None
        self.queue_urls: dict[str, str] = {}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False
        self.media_nodes: list[LocalMediaNode] = []
        self.turn: LocalTurnServer | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        data_dir: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        options: TwinOptions | None = None,
    ) -> LocalTwin:
        """Start a twin keeping its state in `data_dir`; port 0 picks a free port."""
        global _running
        with _running_lock:
            if _running is not None:
                raise RuntimeError(
                    f"a LocalTwin is already running at {_running.base_url}; "
                    "only one twin may run per process (moto state and os.environ are shared)"
                )
            twin = cls(Path(data_dir), host, options or TwinOptions())
            try:
                twin._start(port)
            except BaseException:
                twin._stop()
                raise
            _running = twin
            return twin

    def _start(self, port: int) -> None:
        (self.data_dir / "keys").mkdir(parents=True, exist_ok=True, mode=0o700)
        listener = ports.listen("twin", self.host, port)
        # Accepted sockets inherit this. Without it every response written in two pieces
        # (head, then body) waits out the peer's delayed ACK: 40 ms per request on loopback.
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = int(listener.getsockname()[1])

        self.dynamodb.start()
        self.queue_urls = create_queues(self.dynamodb.endpoint_url, ALL_QUEUES)
        if self.options.turn:
            self.turn = LocalTurnServer(self.data_dir, self.data_dir / "logs", self._media_host)
            self.turn.start()
        environment = handler_environment(
            table_names=self.dynamodb.table_names,
            dynamodb_endpoint=self.dynamodb.endpoint_url,
            management_endpoint=self.management_endpoint,
            signing_key_file=self.signing_key_file,
            public_base_url=self.base_url,
            lambda_endpoint=self.lambda_endpoint,
            functions=self.options.functions,
            turn_urls=self.turn.addresses.urls if self.turn else (),
            turn_secret_file=self.turn.secret_file if self.turn else None,
            queue_urls=self.queue_urls,
            webhooks=self._webhook_environment(),
        )
        self._environment.apply(environment)
        log_redaction.install()
        # Data folders written by older layouts are brought up to date before anything runs.
        moved = migrate(self.dynamodb.table_names["MEETINGS_TABLE"])
        if moved:
            log.info("moved %d meetings to the sessions layout", moved)
        founded = organisation_migration.migrate(
            self.dynamodb.table_names["ACCOUNTS_TABLE"],
            self.dynamodb.table_names["ORGANISATIONS_TABLE"],
        )
        if founded:
            log.info("founded %d organisations for accounts from before them", founded)
        options = self.options
        self._runtime = LocalLambdaRuntime(
            options.functions,
            handler_overrides=options.handler_overrides,
            max_concurrency=options.lambda_concurrency,
            processes=options.lambda_processes,
            observers=options.invocation_observers,
            invoke_concurrency=options.lambda_invoke_concurrency,
        )
        # Before serving, and after the restore and the migrations: the pollers start at each
        # stream's end, so no restored item is delivered and no new one is missed.
        self._event_sources = EventSources(
            options.stream_sources,
            self._runtime,
            dynamodb_endpoint=self.dynamodb.endpoint_url,
            failures_dir=self.data_dir / "failures",
        )
        self._event_sources.start()
        self._queue_sources = QueueSources(
            options.queue_sources,
            self._runtime,
            endpoint=self.dynamodb.endpoint_url,
            queue_urls=self.queue_urls,
        )
        self._queue_sources.start()
        router = TwinRouter(
            websocket_api=WebSocketApi(
                self._runtime,
                self.registry,
                limits=WebSocketLimits(
                    idle_timeout_seconds=options.idle_timeout_seconds,
                    max_connection_seconds=options.max_connection_seconds,
                    max_in_flight_per_connection=options.max_in_flight_per_connection,
                ),
                lose_abrupt_disconnects=options.lose_abrupt_disconnects,
                identity_source=options.ws_identity_source,
            ),
            management_api=ManagementApi(self.registry),
            http_api=HttpApi(self._runtime),
            static_site=StaticSite(options.web_dir),
            lambda_api=LambdaApi(self._runtime),
        )
        config = uvicorn.Config(
            router,
            lifespan="off",
            ws=GatewayWebSocketProtocol,
            ws_max_size=routes.MAX_MESSAGE_BYTES,
            ws_per_message_deflate=False,  # API Gateway does not negotiate compression
            ws_ping_interval=None,  # nor does it ping clients
            ws_ping_timeout=None,
            log_config=None,  # leave the host's logging alone
            access_log=options.access_log,
            timeout_graceful_shutdown=int(SHUTDOWN_GRACE_SECONDS),
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._serve, args=(listener,), name="twin-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the twin's server did not start; see the log")
            time.sleep(0.02)
        log.info("twin serving %s (data in %s)", self.base_url, self.data_dir)
        if options.media_nodes > 0:
            # After the server is up: nodes fetch the JWKS from it as they start.
            self.media_nodes = start_media_nodes(
                options.media_nodes,
                self._media_host,
                f"{self.base_url}/api/.well-known/jwks.json",
                self.dynamodb.table_names["MEDIA_NODES_TABLE"],
                {k: v for k, v in environment.items() if k.startswith("AWS_")},
                self.data_dir / "logs",
            )

    def _webhook_environment(self) -> dict[str, str]:
        options = self.options
        environment = {
            functions.ENV_WEBHOOK_RETRY_TIME_SCALE: repr(options.webhook_retry_time_scale)
        }
        if options.webhook_allow_loopback:
            environment[functions.ENV_WEBHOOK_ALLOW_LOOPBACK] = "1"
        if options.webhook_timeout_seconds is not None:
            environment[functions.ENV_WEBHOOK_TIMEOUT_SECONDS] = repr(
                options.webhook_timeout_seconds
            )
        return environment

    def _forget_media_nodes(self) -> None:
        if not self.media_nodes:
            return
        table = self.dynamodb.table_names["MEDIA_NODES_TABLE"]
        client = self.dynamodb_client()
        for node in self.media_nodes:
            try:
                client.delete_item(TableName=table, Key={"node_id": {"S": node.node_id}})
            except Exception:  # the twin stops all the same; the item's ttl ends it
                log.warning("media node %s not removed from the registry", node.node_id)

    @property
    def _media_host(self) -> str:
        """Where media nodes and coturn listen: the twin's host, or loopback for a wildcard."""
        return self.host if self.host not in {"0.0.0.0", ""} else "127.0.0.1"

    def set_clock_offset(self, seconds: float) -> None:
        """Move the control plane's clock (`townhall.clock`) `seconds` ahead of the system's,
        for the handlers this twin runs in its own process (the default; not worker
        processes), so a test sees "tomorrow" without waiting. 0 puts it back."""
        if self.options.lambda_processes:
            raise RuntimeError("the clock can be moved only for handlers run in the twin's process")
        clock.set_offset(seconds)

    def _serve(self, listener: socket.socket) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            assert self._server is not None
            await self._server.serve(sockets=[listener])

        try:
            asyncio.run(serve())
        except Exception:
            log.exception("the twin's server failed")
        finally:
            listener.close()

    def stop(self) -> None:
        """Close all sockets (running $disconnect), stop serving, snapshot, restore env."""
        global _running
        with _running_lock:
            self._stop()
            if _running is self:
                _running = None

    def _stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            # Nodes first, at once (no drain: every node of the twin is stopping), and out of
            # the registry while DynamoDB is still up.
            for node in self.media_nodes:
                node.halt()
            self._forget_media_nodes()
            if self.turn is not None:
                self.turn.stop()
            # Before the server: a batch in flight posts through the management API.
            if self._event_sources is not None:
                self._event_sources.stop()
            if self._queue_sources is not None:
                self._queue_sources.stop()
            if self._server is not None and self._thread is not None:
                self._server.should_exit = True
                self._thread.join(timeout=SHUTDOWN_GRACE_SECONDS + 10)
                if self._thread.is_alive():
                    log.error("the twin's server did not stop in time")
            if self._runtime is not None:
                self._runtime.close()
        finally:
            try:
                self.dynamodb.stop()
            finally:
                self._environment.restore()
                clock.set_offset(0)  # a moved clock ends with the twin that moved it

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        # Stopping blocks for a while ($disconnect handlers, snapshot): keep the caller's
        # event loop free meanwhile, its clients may be part of the shutdown.
        await asyncio.to_thread(self.stop)

    # -- addresses ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The web app (and /api) on loopback, e.g. http://127.0.0.1:8000."""
        # A wildcard bind is still reached through loopback.
        host = "127.0.0.1" if self.host in {"0.0.0.0", ""} else self.host
        return f"http://{host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """The WebSocket API stage, e.g. ws://127.0.0.1:8000/ws (add ?meeting=...; the token
        goes as the second subprotocol, `townhall.routes`)."""
        return self.base_url.replace("http://", "ws://", 1) + f"/{routes.STAGE}"

    @property
    def management_endpoint(self) -> str:
        """endpoint_url for boto3's apigatewaymanagementapi client."""
        return f"{self.base_url}/{routes.STAGE}"

    @property
    def dynamodb_endpoint(self) -> str:
        return self.dynamodb.endpoint_url

    @property
    def lambda_endpoint(self) -> str:
        """endpoint_url for boto3's lambda client (the twin's Invoke API)."""
        return self.base_url

    @property
    def table_names(self) -> dict[str, str]:
        """Environment variable -> table name, e.g. {"MEETINGS_TABLE": "townhall-meetings"}."""
        return self.dynamodb.table_names

    @property
    def signing_key_file(self) -> Path:
        return self.data_dir / "keys" / "signing.pem"

    # -- conveniences for tests and tools -------------------------------------------------

    def dynamodb_client(self) -> DynamoDBClient:
        return self.dynamodb.new_client()

    def management_client(self) -> ApiGatewayManagementApiClient:
        return fake_session().client(
            "apigatewaymanagementapi",
            endpoint_url=self.management_endpoint,
        )

    def lambda_client(self) -> Any:
        """A boto3 lambda client for the twin's Invoke API."""
        return fake_session().client(
            "lambda",
            endpoint_url=self.lambda_endpoint,
        )

    def stream_failures(self, logical_id: str) -> list[dict[str, Any]]:
        """What the stream source `logical_id` (e.g. "OutboxDelivery") sent to its failure
        destination, oldest first: Lambda's on-failure records (see event_source.py). Also
        in `<data>/failures/<logical_id>.jsonl`."""
        if self._event_sources is None:
            raise RuntimeError("the twin is not running")
        return self._event_sources.failures(logical_id)

    def live_connection_ids(self) -> list[str]:
        """Ids of the open WebSocket connections (call from any thread but the twin's)."""
        return self._on_twin_loop(self._connection_ids)

    async def _connection_ids(self) -> list[str]:
        return [c.connection_id for c in self.registry.all() if not c.closing]

    def live_connection_authorizers(self) -> dict[str, dict[str, Any]]:
        """Open connection id -> its authorizer context (principalId and the context the
        authorizer returned), for tools that must tell whose socket is whose."""
        return self._on_twin_loop(self._connection_authorizers)

    async def _connection_authorizers(self) -> dict[str, dict[str, Any]]:
        return {
            c.connection_id: dict(c.facts.authorizer or {})
            for c in self.registry.all()
            if not c.closing
        }

    def snapshot(self) -> None:
        """Write the tables to the data folder now (it also happens every few seconds)."""
        self.dynamodb.snapshot()

    def _on_twin_loop(self, coroutine_function: Any) -> Any:
        if self._loop is None:
            raise RuntimeError("the twin is not running")
        future = asyncio.run_coroutine_threadsafe(coroutine_function(), self._loop)
        return future.result(timeout=10)


def running_twin() -> LocalTwin | None:
    """The twin running in this process, if any."""
    return _running


__all__ = ["LocalTwin", "TwinOptions", "running_twin"]
