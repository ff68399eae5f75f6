"""The hand-signed @connections client: its requests carry valid SigV4 signatures (checked by
recomputing the signature independently from what a server receives), gone is 410 whether or
not API Gateway adds the error-type header, and throttling is retried, then reported."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import pytest

from townhall.connections_api import ConnectionsApi, ConnectionsApiError, region_of

SECRET = "test-secret-key"


class Recorder(BaseHTTPRequestHandler):
    answers: ClassVar[list[tuple[int, dict[str, str]]]] = []
    seen: ClassVar[list[dict[str, Any]]] = []

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        Recorder.seen.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
        )
        status, headers = Recorder.answers.pop(0) if Recorder.answers else (200, {})
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_POST = do_DELETE = _handle

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    Recorder.answers, Recorder.seen = [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/ws"
    httpd.shutdown()
    httpd.server_close()


def _verify_sigv4(request: dict[str, Any], region: str, service: str = "execute-api") -> None:
    """Recompute the signature the way API Gateway does (AWS SigV4, written out here)."""
    auth = request["headers"]["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 ")
    fields = dict(
        part.strip().split("=", 1) for part in auth[len("AWS4-HMAC-SHA256 ") :].split(",")
    )
    access_key, date, scope_region, scope_service, terminator = fields["Credential"].split("/")
    assert (access_key, scope_region, scope_service, terminator) == (
        "AKIDEXAMPLE",
        region,
        service,
        "aws4_request",
    )
    signed = fields["SignedHeaders"].split(";")
    assert {"host", "x-amz-date", "x-amz-security-token"} <= set(signed)
    path = urlsplit(request["path"]).path
    # Non-S3 services sign the path as sent, URI-encoded once more (each segment, '/' kept).
    canonical_path = "/".join(quote(segment, safe="") for segment in path.split("/"))
    canonical = "\n".join(
        [
            request["method"],
            canonical_path,
            "",
            *[f"{h}:{' '.join(request['headers'][h].split())}" for h in signed],
            "",
            fields["SignedHeaders"],
            hashlib.sha256(request["body"]).hexdigest(),
        ]
    )
    amz_date = request["headers"]["x-amz-date"]
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + SECRET).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    assert fields["Signature"] == expected, "SigV4 signature does not verify"


def test_post_and_delete_are_signed_and_addressed(server: str) -> None:
    api = ConnectionsApi(server)
    assert api.post("LmxFocX0IAMCJfg=", b'{"hello":"world"}') == 200
    assert api.delete("LmxFocX0IAMCJfg=") in (200, 204)
    post, delete = Recorder.seen
    assert post["method"] == "POST" and delete["method"] == "DELETE"
    assert post["path"] == "/ws/@connections/LmxFocX0IAMCJfg%3D"
    assert post["body"] == b'{"hello":"world"}'
    assert post["headers"]["x-amz-security-token"] == "session-token"
    _verify_sigv4(post, "eu-west-3")
    _verify_sigv4(delete, "eu-west-3")


def test_gone_with_or_without_the_error_type_header(server: str) -> None:
    Recorder.answers = [(410, {"x-amzn-ErrorType": "GoneException"}), (410, {})]
    api = ConnectionsApi(server)
    assert api.post("a", b"x") == 410
    assert api.post("b", b"x") == 410


def test_throttling_is_retried_then_reported(server: str) -> None:
    Recorder.answers = [(429, {}), (200, {})]
    assert ConnectionsApi(server).post("a", b"x") == 200
    Recorder.answers = [(429, {}), (429, {}), (429, {"x-amzn-ErrorType": "LimitExceededException"})]
    with pytest.raises(ConnectionsApiError) as info:
        ConnectionsApi(server).post("a", b"x")
    assert info.value.status == 429 and info.value.error_type == "LimitExceededException"
    Recorder.answers = [(403, {"x-amzn-ErrorType": "ForbiddenException"})]
    with pytest.raises(ConnectionsApiError):
        ConnectionsApi(server).post("a", b"x")
    assert len(Recorder.seen) == 6  # 2 + 3 attempts, and a 403 is not retried


def test_region_comes_from_the_endpoint_in_aws() -> None:
    assert region_of("https://abc123.execute-api.ap-south-1.amazonaws.com/ws") == "ap-south-1"
