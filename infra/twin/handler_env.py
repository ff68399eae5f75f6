"""The environment Townhall's handlers run with inside the twin.

In AWS each function gets its environment from the CDK stacks; in the twin every function
shares the process's `os.environ`, so the twin sets the union before the first invocation and
puts the previous values back when it stops.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from infra.twin.fake_aws import FAKE_CREDENTIALS, REGION
from townhall.functions import (
    ENV_PUBLIC_BASE_URL,
    ENV_SIGNING_KEY_FILE,
    ENV_TURN_MEDIA_NODE_URLS,
    ENV_TURN_SECRET_FILE,
    ENV_TURN_URLS,
    ENV_WS_MANAGEMENT_ENDPOINT,
    FunctionSpec,
    invoke_env_var,
)

SERVICE_NAME = "townhall"
METRICS_NAMESPACE = "Townhall"


def handler_environment(
    *,
    table_names: Mapping[str, str],
    dynamodb_endpoint: str,
    management_endpoint: str,
    signing_key_file: Path,
    public_base_url: str,
    lambda_endpoint: str,
    functions: Iterable[FunctionSpec] = (),
    turn_urls: tuple[str, ...] = (),
    turn_secret_file: Path | None = None,
    queue_urls: Mapping[str, str] | None = None,
    webhooks: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Every variable the twin sets for the handlers.

    A function that invokes another (`FunctionSpec.invokes`) learns its name from
    `invoke_env_var(target)`; in the twin that is the target's logical id, which the twin's
    Invoke API accepts as a function name (as it accepts "townhall-<id>" and ARNs).
    """
    invoked = {
        invoke_env_var(target): target.logical_id for spec in functions for target in spec.invokes
    }
    turn: dict[str, str] = {}
    if turn_urls and turn_secret_file is not None:
        # The nodes' side relays too: the twin exercises that path (in AWS it is opt-in).
        node_urls = [u for u in turn_urls if u.startswith("turn:") and "transport=udp" in u]
        turn = {
            ENV_TURN_URLS: " ".join(turn_urls),
            ENV_TURN_SECRET_FILE: str(turn_secret_file),
            ENV_TURN_MEDIA_NODE_URLS: " ".join(node_urls),
        }
    return {
        **table_names,
        **FAKE_CREDENTIALS,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,  # Lambda sets both
        # DynamoDB goes to moto and Lambda to the twin's own Invoke API. Any other AWS call
        # a handler makes fails loudly (no such endpoint, fake credentials) instead of
        # reaching a moto stub.
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
        "AWS_ENDPOINT_URL_LAMBDA": lambda_endpoint,
        # SQS is moto's too, on the same server (infra/twin/queues.py).
        "AWS_ENDPOINT_URL_SQS": dynamodb_endpoint,
        **(queue_urls or {}),
        # The webhook settings AWS never has (townhall.functions.TWIN_ONLY_ENV).
        **(webhooks or {}),
        **invoked,
        # Never ask the EC2 metadata service for credentials; there is none on loopback.
        "AWS_EC2_METADATA_DISABLED": "true",
        ENV_WS_MANAGEMENT_ENDPOINT: management_endpoint,
        ENV_SIGNING_KEY_FILE: str(signing_key_file),
        ENV_PUBLIC_BASE_URL: public_base_url,
        **turn,
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        # No X-Ray daemon locally.
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


class EnvironmentPatch:
    """Sets variables in os.environ and can put back what was there before."""

    def __init__(self) -> None:
        self._previous: dict[str, str | None] = {}

    def apply(self, values: Mapping[str, str]) -> None:
        for name, value in values.items():
            self._previous.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def restore(self) -> None:
        for name, value in self._previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._previous.clear()
