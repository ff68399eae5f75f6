"""`python -m media_fleet` as a real process: workers, the front, routing, registry, drain.

Every process is started by the test and killed in `finally`; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aioice.ice
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contracts.media_nodes import MediaNode
from contracts.node_api import WORKER_HEADER
from infra.twin.dynamodb import LocalDynamoDB
from infra.twin.fake_aws import FAKE_CREDENTIALS, REGION
from media_fleet.service.routing import worker_for
from tests.media.test_service_end_to_end import Client
from townhall.auth.keys import SigningKey
from townhall.media import node_client
from townhall.media.jwks import jwks
from townhall.media.node_client import MediaNodeUnavailable
from townhall.media.tokens import MediaTokenService
from townhall.store import dynamo

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
EXIT_TIMEOUT = 10.0


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@dataclass
class RunningNode:
    node_id: str
    url: str
    process: subprocess.Popen[bytes]
    tokens: MediaTokenService
    out: Path
    err: Path
    # The certificate the front served at the first probe; every later call trusts it only.
    cert_pem: str | None = None

    @property
    def cert_sha256(self) -> str:
        assert self.cert_pem is not None
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(self.cert_pem)).hexdigest()

    def verify(self) -> ssl.SSLContext:
        if self.cert_pem is None:
            port = int(self.url.rsplit(":", 1)[1])
            self.cert_pem = ssl.get_server_certificate(("127.0.0.1", port), timeout=2.0)
        return ssl.create_default_context(cadata=self.cert_pem)

    def health(self) -> dict[str, Any] | None:
        try:
            response = httpx.get(
                self.url + "/v1/health", timeout=2.0, trust_env=False, verify=self.verify()
            )
        except (httpx.HTTPError, OSError):
            return None
        return response.json() if response.status_code == 200 else None

    def token(self, meeting: str, participant: str = "p-1") -> str:
        return self.tokens.issue(meeting, participant, self.node_id, may_publish=True)[0]

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            self.url + path, json=body, timeout=10.0, trust_env=False, verify=self.verify()
        )

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=EXIT_TIMEOUT)

    def log(self) -> str:
        return self.err.read_text(errors="replace")


def processes_of(node_id: str) -> list[int]:
    """Pids whose command line names this node (the supervisor and its workers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if node_id.encode() in cmdline and b"media_fleet" in cmdline:
                pids.append(int(entry.name))
    return pids


@pytest.fixture
def start_node(tmp_path: Path) -> Iterator[Callable[..., RunningNode]]:
    started: list[RunningNode] = []
    key = SigningKey.from_private_key(Ed25519PrivateKey.generate())
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks(key)))

    def start(
        *extra: str, env: dict[str, str] | None = None, announced: bool = True
    ) -> RunningNode:
        node_id = f"node-{secrets.token_hex(4)}"
        port = free_port()
        out, err = tmp_path / f"{node_id}.out", tmp_path / f"{node_id}.err"
        command = [
            sys.executable, "-m", "media_fleet",
            "--node-id", node_id,
            "--control-host", "127.0.0.1",
            "--control-port", str(port),
            *(["--announced-host", "127.0.0.1"] if announced else []),
            "--jwks", str(jwks_file),
            "--workers", "2",
            *extra,
        ]  # fmt: skip
        process_env = {
            **os.environ,
            # As on EC2: the node ships contracts/ and media_fleet/ only, never functions/.
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(
                command, cwd=ROOT, env=process_env, stdout=stdout, stderr=stderr
            )
        node = RunningNode(
            node_id, f"https://127.0.0.1:{port}", process, MediaTokenService(key), out, err
        )
        started.append(node)
        try:
            wait_for(lambda: process.poll() is not None or node.health(), START_TIMEOUT, "the node")
        except AssertionError:
            raise AssertionError(f"node did not start:\n{node.log()}") from None
        assert process.poll() is None, f"node exited {process.returncode}:\n{node.log()}"
        return node

    try:
        yield start
    finally:
        for node in started:
            if node.process.poll() is None:
                node.process.kill()
                node.process.wait(timeout=EXIT_TIMEOUT)
            for pid in processes_of(node.node_id):  # workers left behind by a failure
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def meetings_on_each_worker(workers: int) -> list[str]:
    """One meeting id per worker index."""
    found: dict[int, str] = {}
    for n in range(1000):
        found.setdefault(worker_for(f"meeting-{n}", workers), f"meeting-{n}")
        if len(found) == workers:
            return [found[i] for i in range(workers)]
    raise AssertionError("no meeting found for some worker")


def test_two_workers_behind_one_front_route_meetings_and_stop_on_sigterm(
    start_node: Callable[..., RunningNode],
) -> None:
    node = start_node("--ice-host", "127.0.0.1", announced=False)
    health = node.health()
    assert health is not None
    assert health["node_id"] == node.node_id and health["state"] == "active"
    assert [w["worker"] for w in health["workers"]] == [0, 1]
    assert all(w["state"] == "active" and w["node_id"] == node.node_id for w in health["workers"])
    assert len(processes_of(node.node_id)) == 3  # the supervisor and two workers

    # Each meeting goes to the worker its id hashes to, every time, whoever asks.
    for index, meeting in enumerate(meetings_on_each_worker(2)):
        for participant in ("alice", "bob", "alice"):
            response = node.post("/v1/leave", {"token": node.token(meeting, participant)})
            assert response.status_code == 200, response.text
            assert response.headers[WORKER_HEADER] == str(index), meeting

    # A revocation goes to the meeting's own worker too, which then refuses the token there.
    meeting = meetings_on_each_worker(2)[1]
    carol = node.token(meeting, "carol")
    revocation = node.tokens.issue_revocation(meeting, node.node_id, participant_id="carol")
    revoked = node.post("/v1/revoke", {"token": revocation})
    assert revoked.status_code == 200, revoked.text
    assert revoked.headers[WORKER_HEADER] == "1" and revoked.json() == {"revoked": "participant"}
    refused = node.post("/v1/subscribe", {"token": carol})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "token_revoked"
    assert refused.headers[WORKER_HEADER] == "1"

    # The front routes on an unverified claim; the worker still verifies everything.
    forged = SigningKey.from_private_key(Ed25519PrivateKey.generate())
    token = MediaTokenService(forged).issue("meeting-0", "eve", node.node_id, may_publish=True)[0]
    refused = node.post("/v1/publish", {"token": token, "sdp": "v=0"})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthenticated"
    assert node.post("/v1/subscribe", {}).status_code == 401
    assert node.post("/v1/leave", {"token": 7}).status_code == 400
    big = node.post("/v1/publish", {"token": node.token("m"), "sdp": "x" * 70_000})
    assert big.status_code == 413

    # ICE is gathered on the chosen address only (not rewritten: no --announced-host here).
    offered = node.post("/v1/subscribe", {"token": node.token("meeting-ice", "frank")})
    assert offered.status_code == 200, offered.text
    candidates = [
        line for line in offered.json()["sdp"].splitlines() if line.startswith("a=candidate:")
    ]
    assert candidates and all(line.split()[4] == "127.0.0.1" for line in candidates), candidates
    assert node.post("/v1/leave", {"token": node.token("meeting-ice", "frank")}).status_code == 200
    assert wait_for(lambda: (node.health() or {}).get("sessions") == 0, 5.0, "no session")

    began = time.monotonic()
    assert node.stop() == 0, node.log()
    assert time.monotonic() - began < 5.0
    wait_for(lambda: not processes_of(node.node_id), 5.0, "the workers to exit")
    assert "draining" in node.log()


@pytest.fixture(scope="module")
def db() -> Iterator[LocalDynamoDB]:
    with LocalDynamoDB(None).start() as local:
        yield local


def test_registered_while_serving_draining_on_sigterm_then_gone(
    start_node: Callable[..., RunningNode], db: LocalDynamoDB
) -> None:
    table = db.table_names["MEDIA_NODES_TABLE"]
    client = db.new_client()
    env = {
        "AWS_ENDPOINT_URL_DYNAMODB": db.endpoint_url,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        **FAKE_CREDENTIALS,
    }

    def item(node_id: str) -> dict[str, Any] | None:
        raw = client.get_item(
            TableName=table, Key=dynamo.to_ddb({"node_id": node_id}), ConsistentRead=True
        ).get("Item")
        return dynamo.from_ddb(raw) if raw else None

    try:
        node = start_node(
            "--registry-table", table, "--capacity", "300", "--drain-deadline", "3", env=env
        )
        registered = wait_for(lambda: item(node.node_id), 10.0, "the registry item")
        assert registered["state"] == "active"
        assert registered["control_url"] == node.url and node.url.startswith("https://")
        # The fingerprint the node registered is the certificate its front serves, and the
        # control plane's pinned client reaches the node with it (and only with it).
        assert registered["control_cert_sha256"] == node.cert_sha256
        pinned = MediaNode.from_item(registered)
        assert node_client.call(pinned, "/v1/leave", {"token": node.token("m-pin")}) == {}
        impostor = dataclasses.replace(pinned, control_cert_sha256="0" * 64)
        with pytest.raises(MediaNodeUnavailable, match="not the one it registered"):
            node_client.call(impostor, "/v1/leave", {"token": node.token("m-pin")})
        assert registered["address"] == "127.0.0.1"
        assert int(registered["capacity"]) == 300
        # The heartbeat publishes the load metric as EMF on stdout.
        emf = wait_for(lambda: node.out.read_text().strip(), 10.0, "an EMF line")
        line = json.loads(emf.splitlines()[0])
        assert line["node_id"] == node.node_id and "NodeLoad" in line

        # An open session (a subscribe that was never answered) holds the drain open.
        opened = node.post("/v1/subscribe", {"token": node.token("meeting-drain", "carol")})
        assert opened.status_code == 200, opened.text
        assert opened.json()["sdp"].startswith("v=0")
        assert wait_for(lambda: (node.health() or {}).get("sessions") == 1, 5.0, "1 session")

        node.process.send_signal(signal.SIGTERM)
        draining = wait_for(
            lambda: (i := item(node.node_id)) and i["state"] == "draining", 3.0, "draining"
        )
        assert draining
        refused = node.post("/v1/subscribe", {"token": node.token("meeting-drain", "dave")})
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "draining"
        assert node.process.wait(timeout=EXIT_TIMEOUT) == 0, node.log()
        assert item(node.node_id) is None
        assert "drain deadline passed with 1 sessions open" in node.log()
        wait_for(lambda: not processes_of(node.node_id), 5.0, "the workers to exit")
    finally:
        client.close()


async def test_two_clients_see_each_other_through_the_node_process(
    start_node: Callable[..., RunningNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The clients gather on 127.0.0.1 only, as the node does with --ice-host.
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])
    node = start_node("--ice-host", "127.0.0.1", announced=False)
    a, b = (
        Client(pid, luma, node.token("meeting-through-front", pid))
        for pid, luma in (("alice", 40), ("bob", 210))
    )
    try:
        async with httpx.AsyncClient(timeout=10.0, trust_env=False, verify=node.verify()) as http:
            await a.join(http, node.url)
            await b.join(http, node.url)

            async def both_see_each_other() -> None:
                while not (a.sees(210) and b.sees(40)):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)

            try:
                await asyncio.wait_for(both_see_each_other(), 15.0)
            except TimeoutError:
                pytest.fail(f"not seen in time: alice {a.lumas}, bob {b.lumas}\n{node.log()}")
            health = (await http.get(node.url + "/v1/health")).json()
            assert health["sessions"] == 2
            owner = worker_for("meeting-through-front", 2)
            assert [w["sessions"] for w in health["workers"]][owner] == 2
            for client in (a, b):
                left = await http.post(node.url + "/v1/leave", json={"token": client.token})
                assert left.status_code == 200
    finally:
        await a.close()
        await b.close()
    assert node.stop() == 0, node.log()
