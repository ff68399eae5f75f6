"""LocalDynamoDB: moto's DynamoDB server on loopback, with every Townhall table, kept on disk.

moto keeps its tables in process memory, so the twin snapshots them into the data folder: on
stop, and every few seconds while running (writing a file only when its table changed), and
restores them on start. A user's scheduled meetings therefore survive Ctrl-C.

A table whose spec has a `stream_view` gets a stream (the Meetings table: the outbox, read by
event_source.py). Restoring writes the items back, so they enter the stream as INSERTs; the
stream pollers start after the restore, at the stream's end, so none of them is delivered.

moto runs in a child process of its own: its server is pure Python, and sharing one
interpreter lock with the twin's Lambda threads and its WebSocket loop made every request wait
on the others (a 50-item query took ~80 ms in-process). The child dies with the twin.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from botocore.config import Config

from infra.twin import dynamodb_snapshot, ports
from infra.twin.fake_aws import fake_session
from townhall.schema import ALL_TABLES, TableSpec

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger(__name__)

TABLE_NAME_PREFIX = "townhall-"
# Each snapshot scans every table through moto, which stalls other requests for a moment;
# Ctrl-C and stop() always snapshot, so this only bounds what a kill -9 loses.
DEFAULT_SNAPSHOT_INTERVAL_SECONDS = 10.0
_BATCH_WRITE_LIMIT = 25  # BatchWriteItem takes at most 25 requests
_START_TIMEOUT_SECONDS = 30.0


MOTO_SERVER = Path(__file__).resolve().with_name("moto_server.py")


class MotoServerProcess:
    """moto's server (with the twin's faster writer for item answers, `moto_server.py`) on a
    loopback port, started and stopped with the twin."""

    def __init__(self, host: str, port: int) -> None:
        self.url = f"http://{host}:{port}"
        self._process = subprocess.Popen(
            # By path, with -P so that infra/twin/ is not put on sys.path: the launcher
            # imports only moto (see moto_server.py for what it changes).
            [sys.executable, "-P", str(MOTO_SERVER), "-H", host, "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # werkzeug logs every request
            stderr=subprocess.DEVNULL,
            # Its own session: a Ctrl-C at the terminal reaches the twin, which snapshots the
            # tables and then stops moto, instead of killing moto before that snapshot.
            start_new_session=True,
        )
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto's server exited with {self._process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1) as response:
                    response.read()
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("moto's server did not start in time") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)


def table_name(spec: TableSpec) -> str:
    """The twin's physical name for a table, e.g. "townhall-meetings"."""
    return TABLE_NAME_PREFIX + spec.logical_id.lower()


def create_table_request(spec: TableSpec) -> dict[str, Any]:
    """The CreateTable request for a spec: keys, GSIs (projecting ALL), on-demand billing,
    and the table's stream when the spec has one (`stream_view`: what its records carry)."""
    key_specs = [spec.partition_key, spec.sort_key]
    for index in spec.indexes:
        key_specs += [index.partition_key, index.sort_key]
    attribute_types: dict[str, str] = {}
    for key in key_specs:
        if key is not None:
            attribute_types[key.name] = key.type

    request: dict[str, Any] = {
        "TableName": table_name(spec),
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": type_}
            for name, type_ in attribute_types.items()
        ],
        "KeySchema": _key_schema(
            spec.partition_key.name, spec.sort_key.name if spec.sort_key else None
        ),
    }
    if spec.indexes:
        request["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": _key_schema(
                    index.partition_key.name, index.sort_key.name if index.sort_key else None
                ),
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in spec.indexes
        ]
    if spec.stream_view is not None:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": spec.stream_view}
    return request


def _key_schema(partition_key: str, sort_key: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": partition_key, "KeyType": "HASH"}]
    if sort_key is not None:
        schema.append({"AttributeName": sort_key, "KeyType": "RANGE"})
    return schema


class LocalDynamoDB:
    """moto's DynamoDB server with Townhall's tables, restored from and snapshotted to disk.

    `data_dir=None` keeps nothing on disk (handy for throwaway tests).
    """

    def __init__(
        self,
        data_dir: Path | None,
        *,
        host: str = "127.0.0.1",
        tables: Iterable[TableSpec] = ALL_TABLES,
        snapshot_interval_seconds: float = DEFAULT_SNAPSHOT_INTERVAL_SECONDS,
    ) -> None:
        self.tables: tuple[TableSpec, ...] = tuple(tables)
        self.snapshot_dir = None if data_dir is None else Path(data_dir) / "dynamodb"
        self._host = host
        self._snapshot_interval = snapshot_interval_seconds
        self._server: MotoServerProcess | None = None
        self._client: DynamoDBClient | None = None
        self._endpoint_url: str | None = None
        # The text last written per table, so an unchanged table is not rewritten.
        self._last_written: dict[str, str] = {}
        self._snapshot_lock = threading.Lock()
        self._stop_snapshots = threading.Event()
        self._snapshot_thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        port = ports.reserve("dynamodb", self._host)
        self._server = MotoServerProcess(self._host, port)
        self._endpoint_url = self._server.url
        self._client = self.new_client()
        self._last_written.clear()
        for spec in self.tables:
            self._create_table(spec)
            restored = self._restore(spec)
            if restored:
                log.info("restored %d items into %s", restored, table_name(spec))
        if self.snapshot_dir is not None and self._snapshot_interval > 0:
            self._stop_snapshots.clear()
            self._snapshot_thread = threading.Thread(
                target=self._snapshot_periodically, name="twin-dynamodb-snapshots", daemon=True
            )
            self._snapshot_thread.start()
        log.info("DynamoDB (moto) listening on %s", self._endpoint_url)
        return self

    def stop(self) -> None:
        """Take a last snapshot, then stop the server. Safe to call twice."""
        if self._server is None:
            return
        self._stop_snapshots.set()
        if self._snapshot_thread is not None:
            self._snapshot_thread.join()
            self._snapshot_thread = None
        try:
            self.snapshot()
        finally:
            if self._client is not None:
                self._client.close()
                self._client = None
            self._server.stop()
            self._server = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- what callers need ----------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        if self._endpoint_url is None:
            raise RuntimeError("LocalDynamoDB is not started")
        return self._endpoint_url

    @property
    def table_names(self) -> dict[str, str]:
        """Environment variable name -> physical table name, e.g. MEETINGS_TABLE -> townhall-meetings."""
        return {spec.env_var: table_name(spec) for spec in self.tables}

    def new_client(self) -> DynamoDBClient:
        """A low-level client for this server, with the fake credentials passed explicitly."""
        return fake_session().client(
            "dynamodb",
            endpoint_url=self.endpoint_url,
            config=Config(retries={"max_attempts": 2, "mode": "standard"}),
        )

    # -- snapshots ------------------------------------------------------------------------

    def snapshot(self) -> None:
        """Write every table whose contents changed since the last write."""
        if self.snapshot_dir is None or self._client is None:
            return
        with self._snapshot_lock:
            for spec in self.tables:
                name = table_name(spec)
                text = dynamodb_snapshot.render(name, self._scan_all(name))
                if self._last_written.get(name) == text:
                    continue
                dynamodb_snapshot.write_atomically(
                    dynamodb_snapshot.snapshot_path(self.snapshot_dir, name), text
                )
                self._last_written[name] = text

    def _snapshot_periodically(self) -> None:
        while not self._stop_snapshots.wait(self._snapshot_interval):
            try:
                self.snapshot()
            except Exception:
                # A failed snapshot must not kill the thread; the next one (or stop) retries.
                log.exception("periodic DynamoDB snapshot failed")

    def _scan_all(self, name: str) -> list[dict[str, Any]]:
        assert self._client is not None
        items: list[dict[str, Any]] = []
        for page in self._client.get_paginator("scan").paginate(TableName=name):
            items.extend(page.get("Items", []))
        return items

    # -- start-up helpers -----------------------------------------------------------------

    def _create_table(self, spec: TableSpec) -> None:
        assert self._client is not None
        self._client.create_table(**create_table_request(spec))
        if spec.ttl_attribute is not None:
            self._client.update_time_to_live(
                TableName=table_name(spec),
                TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
            )

    def _restore(self, spec: TableSpec) -> int:
        if self.snapshot_dir is None:
            return 0
        name = table_name(spec)
        path = dynamodb_snapshot.snapshot_path(self.snapshot_dir, name)
        items = dynamodb_snapshot.read_items(path, spec.ttl_attribute)
        if path.exists():
            # The file already says what the table holds: no need to rewrite it until it changes.
            self._last_written[name] = path.read_text(encoding="utf-8")
        for start in range(0, len(items), _BATCH_WRITE_LIMIT):
            batch = items[start : start + _BATCH_WRITE_LIMIT]
            self._batch_put(name, batch)
        return len(items)

    def _batch_put(self, name: str, items: list[dict[str, Any]]) -> None:
        assert self._client is not None
        pending: Any = {name: [{"PutRequest": {"Item": item}} for item in items]}
        # moto never throttles, but honour UnprocessedItems as the API contract requires.
        for _attempt in range(10):
            response = self._client.batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return
        raise RuntimeError(f"could not restore every item of {name}")
