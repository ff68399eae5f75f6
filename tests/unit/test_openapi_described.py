"""Every operation of the HTTP API is described in its OpenAPI document: a summary and a
description, an example of each JSON body it takes and answers, and its errors in the one
error shape (`ErrorOut`). The document is what partners read (and what schemathesis tests
the twin against, tests/integration/test_openapi_conformance.py)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from townhall.api import models, partner_models
from townhall.api.app import create_app
from townhall.api.partner_models import ScopeName
from townhall.model.organisation import SCOPES

SPEC = create_app().openapi()
OPERATIONS = [
    (method.upper(), path, operation)
    for path, methods in SPEC["paths"].items()
    for method, operation in methods.items()
]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SPEC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if schema.get("type") == "array":
        return _resolve(schema["items"])
    return schema


def _has_example(media: dict[str, Any]) -> bool:
    if "example" in media or "examples" in media:
        return True
    return bool(_resolve(media.get("schema", {})).get("examples"))


def test_the_document_lists_every_operation() -> None:
    assert len(OPERATIONS) >= 40
    assert any(path.startswith("/api/v1/") for _, path, _ in OPERATIONS)


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS, ids=lambda v: str(v)[:60])
def test_each_operation_is_described_with_examples_and_errors(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    assert operation.get("summary"), "no summary"
    assert len(operation.get("description", "")) > 20, "no description"
    body = operation.get("requestBody", {}).get("content", {})
    for media_type, media in body.items():
        assert _has_example(media), f"request {media_type} has no example"
    responses = operation["responses"]
    successes = [code for code in responses if code.startswith("2")]
    assert successes
    for code in successes:
        for media_type, media in responses[code].get("content", {}).items():
            assert _has_example(media), f"{code} {media_type} has no example"
    errors = [code for code in responses if code[0] in "45"]
    assert "400" in errors, "a credential in the URL (400) is not documented"
    for code in errors:
        schema = responses[code]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorOut"}, code
    if path.startswith("/api/v1/"):
        assert {"401", "403", "404", "422", "429"} <= set(errors)
        assert "Retry-After" in responses["429"]["headers"]


def test_the_scope_names_the_api_takes_are_the_scopes_that_exist() -> None:
    assert set(ScopeName.__args__) == set(SCOPES)  # type: ignore[attr-defined]


def _described_models() -> list[type[BaseModel]]:
    found = []
    for module in (models, partner_models):
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseModel)
                and value.model_config.get("json_schema_extra")
            ):
                found.append(value)
    return found


@pytest.mark.parametrize("model", _described_models(), ids=lambda m: m.__name__)
def test_every_example_is_valid_for_its_model(model: type[BaseModel]) -> None:
    """An example a partner copies from the document is one the API accepts (request bodies,
    strictly) and one it could answer (responses)."""
    extra = model.model_config["json_schema_extra"]
    assert isinstance(extra, dict)
    for example in extra["examples"]:  # type: ignore[union-attr]
        model.model_validate(example, strict=issubclass(model, models.Body))
