"""The control plane's media-node client pins the node's self-signed certificate."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from contracts.media_nodes import MediaNode
from contracts.node_api import ERROR_STATUS, ErrorCode, error_body
from media_fleet.service.tls import ControlCertificate, generate
from townhall.errors import Forbidden, Gone, InvalidInput
from townhall.media import node_client
from townhall.media.node_client import MediaNodeUnavailable, MediaNodeUnreachable


class TlsNode:
    """A stand-in for a node's front: https on loopback, recording every request it reads."""

    def __init__(self, certificate: ControlCertificate) -> None:
        self.certificate = certificate
        self.requests: list[tuple[str, bytes]] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append((self.path, body))
                # /v1/error/<code> answers that error, as the node would.
                code = self.path.removeprefix("/v1/error/")
                answer: Any = {"sdp": "v=0", "echo": json.loads(body)}
                status = 200
                if code != self.path:
                    status = ERROR_STATUS[ErrorCode(code)]
                    answer = error_body(ErrorCode(code), f"the node says {code}")
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = certificate.server_context()
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def node(self, fingerprint: str | None) -> MediaNode:
        return MediaNode(
            node_id="n-1",
            address="127.0.0.1",
            control_url=self.url,
            capacity=10,
            control_cert_sha256=fingerprint,
        )


@pytest.fixture
def tls_node() -> Iterator[TlsNode]:
    node = TlsNode(generate("n-1", ["127.0.0.1"]))
    node.thread.start()
    try:
        yield node
    finally:
        node.server.shutdown()
        node.server.server_close()
        node.thread.join(timeout=5)


def test_the_pinned_fingerprint_reaches_the_node(tls_node: TlsNode) -> None:
    fingerprint = tls_node.certificate.sha256
    answer = node_client.call(tls_node.node(fingerprint), "/v1/publish", {"token": "t"})
    assert answer == {"sdp": "v=0", "echo": {"token": "t"}}
    # Upper case with colons, as `openssl x509 -fingerprint` prints it, pins the same.
    colons = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    assert node_client.call(tls_node.node(colons), "/v1/leave", {"token": "u"})["sdp"] == "v=0"
    assert [path for path, _ in tls_node.requests] == ["/v1/publish", "/v1/leave"]
    # The node's own errors still come through as domain errors.
    with pytest.raises(Forbidden, match="the node says forbidden"):
        node_client.call(tls_node.node(fingerprint), "/v1/error/forbidden", {"token": "t"})


@pytest.mark.parametrize(
    ("code", "error", "message"),
    [
        ("draining", Gone, "the media node is draining: the node says draining"),
        ("overloaded", MediaNodeUnavailable, "the media node failed: the node says overloaded"),
        ("token_revoked", MediaNodeUnavailable, "the node says token_revoked"),
        ("invalid_input", InvalidInput, "refused the request"),
    ],
)
def test_the_nodes_error_codes_become_domain_errors(
    tls_node: TlsNode, code: str, error: type[Exception], message: str
) -> None:
    node = tls_node.node(tls_node.certificate.sha256)
    with pytest.raises(error, match=message):
        node_client.call(node, f"/v1/error/{code}", {"token": "t"})


def test_a_wrong_fingerprint_is_refused_before_anything_is_sent(tls_node: TlsNode) -> None:
    other = generate("impostor", ["127.0.0.1"]).sha256
    with pytest.raises(MediaNodeUnavailable, match="not the one it registered") as refused:
        node_client.call(tls_node.node(other), "/v1/publish", {"token": "secret"})
    assert tls_node.requests == []
    assert "127.0.0.1" not in str(refused.value)


@pytest.mark.parametrize("fingerprint", [None, "", "abc", "z" * 64])
def test_an_https_node_without_a_usable_fingerprint_is_not_called(
    tls_node: TlsNode, fingerprint: str | None
) -> None:
    with pytest.raises(MediaNodeUnavailable, match="no SHA-256 certificate fingerprint"):
        node_client.call(tls_node.node(fingerprint), "/v1/publish", {"token": "secret"})
    assert tls_node.requests == []


def test_plain_http_is_not_treated_as_tls() -> None:
    # A node on a port nobody listens on: an unreachable (lost) node, not a fingerprint error.
    node = MediaNode(node_id="n", address="x", control_url="http://127.0.0.1:9", capacity=1)
    with pytest.raises(MediaNodeUnreachable, match="cannot be reached") as refused:
        node_client.call(node, "/v1/leave", {})
    # The message reaches participants: the node's address stays in the log.
    assert "127.0.0.1" not in str(refused.value)
    with pytest.raises(MediaNodeUnavailable, match="not http"):
        node_client.call_url("ftp://127.0.0.1:9", "/v1/leave", {}, cert_sha256=None)


def test_a_node_that_accepts_but_never_answers_is_silent_not_unreachable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A listening socket nobody reads from: the kernel accepts the connection (as for a node
    # stopped with SIGSTOP), and no answer ever comes.
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    monkeypatch.setattr(node_client, "TIMEOUT_SECONDS", 0.3)
    node = MediaNode(
        node_id="n",
        address="x",
        control_url=f"http://127.0.0.1:{listener.getsockname()[1]}",
        capacity=1,
    )
    try:
        with pytest.raises(node_client.MediaNodeSilent, match="did not answer") as silent:
            node_client.call(node, "/v1/subscribe", {"token": "secret"})
        # Silence is not evidence of a lost node: it is not the unreachable kind.
        assert not isinstance(silent.value, MediaNodeUnreachable)
    finally:
        listener.close()
