"""The twin's Lambda Invoke API (lambda_api.py) through boto3's lambda client, as a handler
uses it: answers and errors as Lambda gives them, and a function waiting on another cannot
deadlock the shared handler threads."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from infra.twin import LocalTwin, TwinOptions
from tests.twin.helpers import wait_until
from tests.twin.stream_handlers import SLEEPING
from townhall import functions

MODULE = "tests.twin.stream_handlers"
SLICE = functions.OUTBOX_SLICE.logical_id


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTwin]:
    options = TwinOptions(
        handler_overrides={
            functions.OUTBOX_FANOUT.logical_id: f"{MODULE}.consumer",
            SLICE: f"{MODULE}.echo",
            functions.WS_CONNECT.logical_id: f"{MODULE}.fail",
            functions.WS_DISCONNECT.logical_id: f"{MODULE}.sleep",
            functions.HTTP_API.logical_id: f"{MODULE}.http_calls_slice",
        },
        lambda_concurrency=2,
        lambda_invoke_concurrency=2,
    )
    with LocalTwin.start(tmp_path_factory.mktemp("lambda"), options=options) as running:
        yield running


def payload(answer: dict[str, Any]) -> Any:
    return json.loads(answer["Payload"].read())


def test_an_invocation_round_trips_by_any_name_lambda_accepts(twin: LocalTwin) -> None:
    client = twin.lambda_client()
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:townhall-{SLICE}"
    for name in (
        SLICE,
        f"townhall-{SLICE}",
        arn,
        f"{arn}:$LATEST",
        f"123456789012:function:{SLICE}",
    ):
        answer = client.invoke(FunctionName=name, Payload=json.dumps({"n": [1, "two"]}).encode())
        assert answer["StatusCode"] == 200
        assert "FunctionError" not in answer
        assert answer["ExecutedVersion"] == "$LATEST"
        assert payload(answer) == {"echo": {"n": [1, "two"]}, "function": f"townhall-{SLICE}"}
    # No payload: the handler gets {}.
    assert payload(client.invoke(FunctionName=SLICE))["echo"] == {}


def test_a_handler_error_is_a_200_with_lambdas_error_payload(twin: LocalTwin) -> None:
    answer = twin.lambda_client().invoke(FunctionName=functions.WS_CONNECT.logical_id)
    assert answer["StatusCode"] == 200
    assert answer["FunctionError"] == "Unhandled"
    assert payload(answer) == {"errorMessage": "bad input", "errorType": "ValueError"}


def test_unknown_functions_qualifiers_and_other_invocation_types_are_refused(
    twin: LocalTwin,
) -> None:
    client = twin.lambda_client()
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="NoSuchFunction")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName=SLICE, Qualifier="live")
    with pytest.raises(client.exceptions.InvalidParameterValueException) as refused:
        client.invoke(FunctionName=SLICE, InvocationType="Event")
    assert "RequestResponse" in str(refused.value)
    with pytest.raises(client.exceptions.InvalidRequestContentException):
        client.invoke(FunctionName=SLICE, Payload=b"{not json")
    unsigned = httpx.post(f"{twin.lambda_endpoint}/2015-03-31/functions/{SLICE}/invocations")
    assert unsigned.status_code == 403


def test_handlers_are_told_the_endpoint_and_the_functions_they_invoke(twin: LocalTwin) -> None:
    assert os.environ["AWS_ENDPOINT_URL_LAMBDA"] == twin.lambda_endpoint
    assert os.environ[functions.invoke_env_var(functions.OUTBOX_SLICE)] == SLICE


def test_calls_past_the_invoke_threads_are_throttled_not_queued(twin: LocalTwin) -> None:
    assert twin.options.lambda_invoke_concurrency == 2
    no_retries = boto3.client(  # to see the 429 itself (SDKs retry it)
        "lambda",
        endpoint_url=twin.lambda_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )
    sleeper = functions.WS_DISCONNECT.logical_id
    clients = [twin.lambda_client() for _ in range(2)]  # made here: boto3 makes them slowly

    def slow(client: Any) -> Any:
        return client.invoke(FunctionName=sleeper, Payload=b'{"seconds": 1}')

    with ThreadPoolExecutor(2) as pool:
        calls = [pool.submit(slow, client) for client in clients]
        wait_until(lambda: SLEEPING.count == 2)  # both running: every invoke thread is busy
        with pytest.raises(ClientError) as throttled:
            no_retries.invoke(FunctionName=sleeper, Payload=b'{"seconds": 0}')
        assert all(payload(call.result()) == "slept" for call in calls)
    assert throttled.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    # Free again: served.
    assert payload(no_retries.invoke(FunctionName=sleeper, Payload=b'{"seconds": 0}')) == "slept"


def test_handlers_waiting_on_other_functions_do_not_deadlock_the_shared_threads(
    twin: LocalTwin,
) -> None:
    """Six HTTP API invocations at once on two shared threads, each waiting on a synchronous
    invocation of the slice function (which takes 0.3 s). Were the slices queued behind the
    callers, the two running callers would wait for ever (until their timeout)."""
    assert twin.options.lambda_concurrency == 2
    with ThreadPoolExecutor(6) as pool:
        answers = list(
            pool.map(
                lambda i: httpx.get(f"{twin.base_url}/api/call/{i}", timeout=30),
                range(6),
            )
        )
    for answer in answers:
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["error"] is None
        assert body["answer"]["echo"] == {"seconds": 0.3}
