"""The HTTP API emulator (payload format 2.0) and the static web app, over real sockets."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model

from infra.twin import LocalTwin
from infra.twin.http_api import MAX_PAYLOAD_BYTES
from tests.twin.helpers import running_twin, with_timeout
from tests.twin.sample_handlers import RECORDER
from townhall import functions


@pytest.fixture(scope="module")
def web_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    web = tmp_path_factory.mktemp("web")
    (web / "index.html").write_text("<!doctype html><title>Townhall</title>")
    (web / "app.js").write_text("export const answer = 42;\n")
    (web / "style.css").write_text("body { margin: 0 }\n")
    (web / "rooms").mkdir()
    (web / "rooms" / "index.html").write_text("<p>rooms</p>")
    (web.parent / "secret.txt").write_text("outside web/")
    (web / "escape.txt").symlink_to(web.parent / "secret.txt")
    return web


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory, web_dir: Path) -> Iterator[LocalTwin]:
    yield from running_twin(
        tmp_path_factory.mktemp("twin-http"),
        web_dir=web_dir,
        functions=(with_timeout(functions.HTTP_API, 1), *functions.ALL_FUNCTIONS[1:]),
    )


@pytest.fixture
def client(twin: LocalTwin) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=twin.base_url, timeout=10) as c:
        yield c


def last_event() -> dict[str, Any]:
    return RECORDER.events("http_api")[-1]


# -- the event -------------------------------------------------------------------------------


def test_event_has_every_key_of_payload_format_2(client: httpx.Client) -> None:
    response = client.post(
        "/api/meetings/a%20b?tag=x&tag=y&empty=",
        json={"title": "Standup"},
        headers=[("X-Custom", "one"), ("x-custom", "two"), ("Cookie", "session=abc; theme=dark")],
    )
    assert response.status_code == 201
    event = last_event()

    assert event["version"] == "2.0"
    assert event["routeKey"] == "ANY /api/{proxy+}"
    assert event["rawPath"] == "/api/meetings/a%20b"
    assert event["rawQueryString"] == "tag=x&tag=y&empty="
    assert sorted(event["cookies"]) == ["session=abc", "theme=dark"]
    headers = event["headers"]
    assert all(name == name.lower() for name in headers)
    assert headers["x-custom"] == "one,two"
    assert "cookie" not in headers  # moved to `cookies`
    assert headers["content-type"] == "application/json"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-amzn-trace-id"].startswith("Root=1-")
    assert event["queryStringParameters"] == {"tag": "x,y", "empty": ""}
    assert event["pathParameters"] == {"proxy": "meetings/a b"}
    assert json.loads(event["body"]) == {"title": "Standup"}
    assert event["isBase64Encoded"] is False
    assert "stageVariables" not in event

    context = event["requestContext"]
    assert context["accountId"] == "123456789012"
    assert isinstance(context["apiId"], str) and len(context["apiId"]) == 10
    assert context["domainName"] == client.base_url.netloc.decode()
    assert isinstance(context["domainPrefix"], str)
    assert context["http"] == {
        "method": "POST",
        "path": "/api/meetings/a%20b",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": client.headers["user-agent"],
    }
    assert isinstance(context["requestId"], str) and context["requestId"].endswith("=")
    assert context["routeKey"] == "ANY /api/{proxy+}"
    assert context["stage"] == "$default"
    assert isinstance(context["time"], str) and context["time"].endswith(" +0000")
    assert isinstance(context["timeEpoch"], int)
    # Powertools' own model of the event accepts it.
    APIGatewayProxyEventV2Model.model_validate(event)


def test_keys_without_content_are_left_out(client: httpx.Client) -> None:
    client.get("/api/meetings")
    event = last_event()
    assert "cookies" not in event
    assert "queryStringParameters" not in event
    assert "body" not in event
    assert event["rawQueryString"] == ""
    assert event["isBase64Encoded"] is False


def test_binary_body_is_base64(client: httpx.Client) -> None:
    payload = bytes(range(256))
    client.put("/api/upload", content=payload, headers={"content-type": "application/octet-stream"})
    event = last_event()
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


def test_text_body_that_is_not_utf8_is_base64(client: httpx.Client) -> None:
    client.post("/api/notes", content=b"\xff\xfe", headers={"content-type": "text/plain"})
    assert last_event()["isBase64Encoded"] is True


# -- the response ----------------------------------------------------------------------------


def test_response_maps_status_headers_cookies_and_body(client: httpx.Client) -> None:
    response = client.get("/api/anything")
    assert response.status_code == 201
    assert response.headers["x-sample"] == "yes"
    assert response.headers.get_list("x-multi") == ["a", "b"]
    assert response.headers.get_list("set-cookie") == [
        "session=abc; Path=/; HttpOnly",
        "theme=dark",
    ]
    assert response.headers["apigw-requestid"] == last_event()["requestContext"]["requestId"]
    assert response.json() == {
        "rawPath": "/api/anything",
        "requestId": response.headers["apigw-requestid"],
    }


def test_base64_response_body_is_decoded(client: httpx.Client) -> None:
    response = client.get("/api/binary")
    assert response.content == bytes(range(256))
    assert response.headers["content-type"] == "application/octet-stream"


def test_answer_without_status_code_is_a_json_200(client: httpx.Client) -> None:
    response = client.get("/api/no-status")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"hello": "world"}


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/api/crash", 500, "Internal Server Error"),
        ("/api/bad-status", 500, "Internal Server Error"),
        ("/api/sleep?seconds=1.5", 503, "Service Unavailable"),  # past the 1 s timeout
        ("/api/", 404, "Not Found"),  # {proxy+} needs a segment
    ],
)
def test_failures_answer_like_api_gateway(
    client: httpx.Client, path: str, status: int, message: str
) -> None:
    response = client.get(path)
    assert (response.status_code, response.json()) == (status, {"message": message})


def test_payload_over_10_mb_is_413(client: httpx.Client) -> None:
    calls = len(RECORDER.events("http_api"))
    response = client.post("/api/upload", content=b"x" * (MAX_PAYLOAD_BYTES + 1))
    assert (response.status_code, response.json()) == (413, {"message": "Request Entity Too Large"})
    assert len(RECORDER.events("http_api")) == calls  # the function never ran


def test_handlers_reach_dynamodb_through_the_environment(
    client: httpx.Client, twin: LocalTwin
) -> None:
    assert client.post("/api/put-meeting").status_code == 204
    item = twin.dynamodb_client().get_item(
        TableName=twin.table_names["MEETINGS_TABLE"],
        Key={"pk": {"S": "meeting#http"}, "sk": {"S": "meta"}},
    )["Item"]
    assert item["title"] == {"S": "from a handler"}


# -- the static web app ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type", "text"),
    [
        ("/", "text/html; charset=utf-8", "<title>Townhall</title>"),
        ("/app.js", "text/javascript; charset=utf-8", "answer = 42"),
        ("/style.css", "text/css; charset=utf-8", "margin"),
        ("/rooms/index.html", "text/html; charset=utf-8", "rooms"),
    ],
)
def test_static_files(client: httpx.Client, path: str, content_type: str, text: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["cache-control"] == "no-cache"
    assert text in response.text


@pytest.mark.parametrize(
    "raw_path",
    [
        "/missing.html",
        "/rooms/",  # CloudFront's default root object applies to / only
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/rooms/../../secret.txt",
        "/..%2fsecret.txt",
        "/escape.txt",  # a symlink pointing out of web/
        "/%00",
    ],
)
def test_static_site_never_leaves_web_dir(twin: LocalTwin, raw_path: str) -> None:
    # http.client sends the path as written; httpx would normalise the dot segments away.
    connection = http.client.HTTPConnection(twin.host, twin.port, timeout=5)
    try:
        connection.request("GET", raw_path)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 404
    assert b"outside web/" not in body


def test_only_one_twin_per_process(twin: LocalTwin, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        LocalTwin.start(tmp_path)
