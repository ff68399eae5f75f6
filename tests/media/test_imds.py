"""IMDSv2 client and termination watcher, against a real HTTP server on 127.0.0.1 that behaves
like IMDSv2 with tokens required (a GET without a valid token gets 401)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from media_fleet.service import imds
from media_fleet.service.imds import (
    ImdsClient,
    ImdsError,
    TerminationWatcher,
    resolve_auto,
    start_termination_watcher,
)
from media_fleet.service.settings import parse

POLL = 0.05


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out on purpose leaves a broken pipe behind


class FakeImds:
    """IMDSv2 as EC2 serves it, with knobs: values, token lifetime override, failures, delay."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {
            "meta-data/instance-id": "i-0123456789abcdef0",
            "meta-data/local-ipv4": "10.40.3.7",
            "meta-data/public-ipv4": "203.0.113.9",
            "meta-data/autoscaling/target-lifecycle-state": "InService",
        }
        self.tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self.server_ttl: float | None = None  # if set, tokens die after this, whatever was asked
        self.fail_with: int | None = None
        self.delay = 0.0
        self.puts = 0
        self.gets: list[str] = []
        self.unauthorized = 0
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: str = "") -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:
                if self.path != "/latest/api/token":
                    self._send(404)
                    return
                ttl_header = self.headers.get(imds.TOKEN_TTL_HEADER)
                if ttl_header is None or not 1 <= int(ttl_header) <= 21600:
                    self._send(400, "missing or invalid TTL")
                    return
                token = secrets.token_urlsafe(24)
                ttl = fake.server_ttl if fake.server_ttl is not None else float(ttl_header)
                with fake.lock:
                    fake.puts += 1
                    fake.tokens[token] = time.monotonic() + ttl
                self._send(200, token)

            def do_GET(self) -> None:
                if fake.delay:
                    time.sleep(fake.delay)
                if fake.fail_with is not None:
                    self._send(fake.fail_with, "broken")
                    return
                token = self.headers.get(imds.TOKEN_HEADER)
                with fake.lock:
                    expiry = fake.tokens.get(token or "")
                    if expiry is None or time.monotonic() >= expiry:
                        fake.unauthorized += 1
                        self._send(401)
                        return
                    path = self.path.removeprefix("/latest/")
                    fake.gets.append(path)
                    value = fake.values.get(path)
                if value is None:
                    self._send(404, "Not Found")
                else:
                    self._send(200, value)

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def set_state(self, state: str) -> None:
        with self.lock:
            self.values["meta-data/autoscaling/target-lifecycle-state"] = state

    def state_reads(self) -> int:
        with self.lock:
            return sum(1 for p in self.gets if p.endswith(imds.LIFECYCLE_STATE))

    def __enter__(self) -> FakeImds:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeImds]:
    with FakeImds() as server:
        yield server


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@contextlib.contextmanager
def watching(watcher: TerminationWatcher) -> Iterator[TerminationWatcher]:
    watcher.start()
    try:
        yield watcher
    finally:
        watcher.stop(timeout=5)


# -- the emulator behaves like IMDSv2 ---------------------------------------------------------


def test_fake_requires_a_token(fake: FakeImds) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(fake.url + "/latest/meta-data/instance-id", timeout=2)
    assert refused.value.code == 401
    put = urllib.request.Request(fake.url + "/latest/api/token", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as no_ttl:
        urllib.request.urlopen(put, timeout=2)
    assert no_ttl.value.code == 400


# -- the helpers ------------------------------------------------------------------------------


def test_helpers_read_identity_with_one_token(fake: FakeImds) -> None:
    client = ImdsClient(fake.url)
    assert client.instance_id() == "i-0123456789abcdef0"
    assert client.local_ipv4() == "10.40.3.7"
    assert client.public_ipv4() == "203.0.113.9"
    assert client.target_lifecycle_state() == "InService"
    assert fake.puts == 1  # the token is reused
    assert fake.unauthorized == 0


def test_missing_values(fake: FakeImds) -> None:
    del fake.values["meta-data/public-ipv4"]
    del fake.values["meta-data/autoscaling/target-lifecycle-state"]
    del fake.values["meta-data/local-ipv4"]
    client = ImdsClient(fake.url)
    assert client.public_ipv4() is None
    assert client.target_lifecycle_state() is None  # not in an Auto Scaling group
    with pytest.raises(ImdsError, match="local-ipv4"):
        client.local_ipv4()


def test_token_refreshed_before_its_ttl_ends(fake: FakeImds) -> None:
    client = ImdsClient(fake.url, token_ttl_seconds=1)
    assert client.instance_id() == "i-0123456789abcdef0"
    assert client.instance_id() == "i-0123456789abcdef0"
    assert fake.puts == 1
    time.sleep(0.6)  # past half of a 1 s TTL: renewed before IMDS would refuse it
    assert client.local_ipv4() == "10.40.3.7"
    assert fake.puts == 2
    assert fake.unauthorized == 0


def test_token_expired_by_imds_is_replaced_after_a_401(fake: FakeImds) -> None:
    fake.server_ttl = 0.2  # IMDS drops tokens early (or restarted): the client only sees 401
    client = ImdsClient(fake.url)
    assert client.instance_id() == "i-0123456789abcdef0"
    time.sleep(0.3)
    assert client.public_ipv4() == "203.0.113.9"
    assert fake.unauthorized == 1
    assert fake.puts == 2


def test_errors_are_imds_errors_and_timeouts_are_bounded(fake: FakeImds) -> None:
    fake.fail_with = 500
    with pytest.raises(ImdsError, match="HTTP 500"):
        ImdsClient(fake.url).instance_id()
    fake.fail_with = None
    fake.delay = 2.0
    started = time.monotonic()
    with pytest.raises(ImdsError):
        ImdsClient(fake.url, timeout_seconds=0.2).instance_id()
    assert time.monotonic() - started < 1.5
    with pytest.raises(ImdsError):
        ImdsClient("http://127.0.0.1:9", timeout_seconds=0.5).instance_id()  # nothing listens


def test_base_url_from_botocore_variable(monkeypatch: pytest.MonkeyPatch, fake: FakeImds) -> None:
    monkeypatch.setenv(imds.ENDPOINT_ENV, fake.url + "/")
    assert ImdsClient().base_url == fake.url
    monkeypatch.delenv(imds.ENDPOINT_ENV)
    assert ImdsClient().base_url == "http://169.254.169.254"


def test_cli_prints_one_value(fake: FakeImds, capsys: pytest.CaptureFixture[str]) -> None:
    assert imds.main(["instance-id", "--base-url", fake.url]) == 0
    assert imds.main(["public-ipv4", "--base-url", fake.url]) == 0
    assert capsys.readouterr().out.split() == ["i-0123456789abcdef0", "203.0.113.9"]
    del fake.values["meta-data/public-ipv4"]
    assert imds.main(["public-ipv4", "--base-url", fake.url, "--attempts", "2"]) == 1
    assert "no public-ipv4" in capsys.readouterr().err
    fake.fail_with = 500
    code = imds.main(
        ["local-ipv4", "--base-url", fake.url, "--attempts", "2", "--retry-seconds", "0"]
    )
    assert code == 1


def test_resolve_auto(fake: FakeImds) -> None:
    common = ["--control-port", "7880", "--jwks", "https://example.org/jwks.json"]
    settings = parse(
        [
            *common,
            *("--node-id", "auto", "--instance-id", "auto", "--control-host", "auto"),
            *("--announced-host", "auto", "--ice-host", "auto"),
        ]
    )
    resolved = resolve_auto(settings, ImdsClient(fake.url))
    assert resolved.node_id == resolved.instance_id == "i-0123456789abcdef0"
    assert resolved.control_host == "10.40.3.7"
    assert resolved.ice_hosts == ("10.40.3.7",)
    assert resolved.announced_host == "203.0.113.9"
    plain = parse(["--node-id", "n1", *common])
    assert resolve_auto(plain, ImdsClient("http://127.0.0.1:9")) is plain  # IMDS not touched


# -- the termination watcher ------------------------------------------------------------------


def test_watcher_fires_once_on_terminated(fake: FakeImds) -> None:
    calls: list[float] = []
    watcher = TerminationWatcher(
        lambda: calls.append(time.monotonic()), client=ImdsClient(fake.url), interval_seconds=POLL
    )
    with watching(watcher):
        assert wait_for(lambda: fake.state_reads() >= 3)
        assert calls == [] and not watcher.fired
        assert watcher.last_state == "InService"
        fake.set_state("Terminated")
        assert watcher.wait_fired(5)
        assert wait_for(lambda: not watcher.running)
        reads = fake.state_reads()
        time.sleep(5 * POLL)
        assert fake.state_reads() == reads  # it stopped polling
    assert len(calls) == 1
    assert watcher.poll_once() is True and len(calls) == 1  # never twice
    assert fake.puts == 1


def test_watcher_survives_imds_failures_and_callback_errors(
    fake: FakeImds, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    def boom() -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("drain failed to start")

    fake.fail_with = 500
    watcher = TerminationWatcher(boom, client=ImdsClient(fake.url), interval_seconds=POLL)
    with caplog.at_level("DEBUG", logger=imds.__name__), watching(watcher):
        assert wait_for(lambda: len(caplog.records) >= 3)
        assert watcher.running and not watcher.fired
        fake.fail_with = None
        fake.set_state("Terminated")
        assert watcher.wait_fired(5)
        assert wait_for(lambda: not watcher.running)
    assert calls == 1
    messages = [r.getMessage() for r in caplog.records]
    assert any("HTTP 500" in m for m in messages)
    assert any("termination callback failed" in m for m in messages)


def test_watcher_outside_a_group_keeps_polling(fake: FakeImds) -> None:
    del fake.values["meta-data/autoscaling/target-lifecycle-state"]
    fired: list[int] = []
    watcher = TerminationWatcher(
        lambda: fired.append(1), client=ImdsClient(fake.url), interval_seconds=POLL
    )
    with watching(watcher):
        assert wait_for(lambda: len(fake.gets) >= 3)
        assert watcher.running and fired == []


def test_watcher_with_an_unreachable_imds_never_raises() -> None:
    watcher = TerminationWatcher(
        lambda: None,
        client=ImdsClient("http://127.0.0.1:9", timeout_seconds=0.2),
        interval_seconds=POLL,
    )
    with watching(watcher):
        time.sleep(0.3)
        assert watcher.running and not watcher.fired
    assert not watcher.running


def test_start_termination_watcher_sets_the_supervisors_event(fake: FakeImds) -> None:
    common = ["--node-id", "n1", "--control-port", "7880", "--jwks", "jwks.json"]
    loop = asyncio.new_event_loop()
    try:
        assert start_termination_watcher(parse(common), loop, lambda: None) is None
        settings = parse([*common, "--asg-name", "Townhall-Media-Nodes", "--instance-id", "i-1"])

        async def run() -> None:
            stop = asyncio.Event()
            watcher = start_termination_watcher(
                settings,
                asyncio.get_running_loop(),
                stop.set,
                base_url=fake.url,
                interval_seconds=POLL,
            )
            assert watcher is not None
            try:
                await asyncio.sleep(0.2)
                assert not stop.is_set()
                fake.set_state("Terminated")
                await asyncio.wait_for(stop.wait(), 5)
            finally:
                watcher.stop(timeout=5)

        loop.run_until_complete(run())
    finally:
        loop.close()
