"""schemathesis against the whole OpenAPI document, on the real twin: for every operation,
generated requests (valid and invalid) never get a server error, and every answer is one the
document declares, in the declared shape and content type.

The partner routes (/api/v1) are called with an API key of every scope, the others with an
owner's access token: random ids then mostly name nothing (404), random bodies mostly fail
validation (422), and both must be what the document says. Bounded: a few examples per
operation, so the whole pass stays within about a minute.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.client import Api
from tests.integration.conftest import Twin
from townhall.api.app import create_app
from townhall.model.organisation import SCOPES

# Per operation; about 45 operations.
EXAMPLES = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


class Credentials:
    """Who calls, and real ids of theirs: half the generated cases get these in their path,
    so the operations are exercised on things that exist, not only on 404s."""

    def __init__(self, token: str, key: str, meeting_id: str, session_id: str) -> None:
        self.token, self.key = token, key
        self.ids = {"meeting_id": meeting_id, "session_id": session_id}
        self.cases = 0

    def use_real_ids(self, case: schemathesis.Case) -> None:
        self.cases += 1
        if self.cases % 2 == 0 and case.path_parameters:
            for name in set(case.path_parameters) & set(self.ids):
                case.path_parameters[name] = self.ids[name]

    def for_path(self, path: str) -> dict[str, str]:
        credential = self.key if path.startswith("/api/v1/") else self.token
        return {"authorization": f"Bearer {credential}"}


async def _credentials(base_url: str) -> Credentials:
    owner = Api(base_url)
    try:
        await owner.sign_up(f"schemathesis-{secrets.token_hex(4)}@example.com", "Schema Thesis")
        assert owner.token is not None
        key = await owner.post(
            "/api/v1/keys",
            {"name": "schemathesis", "scopes": sorted(SCOPES), "rate_per_second": 100},
        )
        meeting_id = (await owner.create_meeting(title="Schemathesis"))["meeting_id"]
        # The host's join starts a session (no socket needed for it to exist and run).
        grant = await owner.join(meeting_id, "Host")
        return Credentials(owner.token, key.json()["key"], meeting_id, grant["session_id"])
    finally:
        await owner.close()


@pytest.fixture(scope="module")
def credentials(twin: Twin) -> Credentials:
    return asyncio.run(_credentials(twin.base_url))


@pytest.fixture(scope="module")
def api_schema(twin: Twin) -> Iterator[schemathesis.BaseSchema]:
    yield schemathesis.openapi.from_url(f"{twin.base_url}/api/openapi.json")


# Each operation is its own test. (schemathesis' pytest loader, `from_fixture`, does not run
# under pytest 9; the operations come from the app's document, the schema from the twin's.)
OPERATIONS = [
    (method.upper(), path)
    for path, methods in create_app().openapi()["paths"].items()
    for method in methods
]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_answers_as_documented(
    method: str,
    path: str,
    api_schema: schemathesis.BaseSchema,
    credentials: Credentials,
    twin: Twin,
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure shows as found
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def answers_as_documented(case: schemathesis.Case) -> None:
        credentials.use_real_ids(case)
        case.call_and_validate(
            base_url=twin.base_url,
            headers=credentials.for_path(case.path),
            checks=CHECKS,
            timeout=15,
        )

    answers_as_documented()
