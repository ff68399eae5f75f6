"""Judging a Lambda REQUEST authorizer's answer the way API Gateway does for WebSocket APIs.

WebSocket APIs accept only the IAM-policy form of answer (no "simple responses"):

    {"principalId": "user-1",
     "policyDocument": {"Version": "2012-10-17",
                        "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow",
                                       "Resource": "arn:aws:execute-api:...:api/ws/$connect"}]},
     "context": {"meetingId": "m-1", "role": "host", "admitted": true}}

An explicit Deny that matches the `$connect` method ARN wins; otherwise a matching Allow lets
the connection through; otherwise it is denied (403). An answer without a principal or policy,
or with a context value that is not a string, number or boolean, is a configuration error and
API Gateway answers 500.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

INVOKE_ACTION = "execute-api:Invoke"


@dataclass(frozen=True)
class AuthorizerDecision:
    """Either allowed, with what becomes `requestContext.authorizer`, or an HTTP status."""

    allowed: bool
    status: int
    authorizer: dict[str, Any] | None = None

    @classmethod
    def allow(cls, authorizer: dict[str, Any]) -> AuthorizerDecision:
        return cls(allowed=True, status=200, authorizer=authorizer)

    @classmethod
    def reject(cls, status: int) -> AuthorizerDecision:
        return cls(allowed=False, status=status)


class MalformedAuthorizerResponse(ValueError):
    pass


def judge(response: Any, method_arn: str) -> AuthorizerDecision:
    """The decision for an authorizer's JSON answer on `method_arn`."""
    try:
        principal_id, statements, context = _parse(response)
    except MalformedAuthorizerResponse:
        return AuthorizerDecision.reject(500)
    matching = [s for s in statements if _applies(s, method_arn)]
    if any(s.get("Effect") == "Deny" for s in matching):
        return AuthorizerDecision.reject(403)
    if not any(s.get("Effect") == "Allow" for s in matching):
        return AuthorizerDecision.reject(403)
    return AuthorizerDecision.allow({"principalId": principal_id, **context})


def _parse(response: Any) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    if not isinstance(response, dict):
        raise MalformedAuthorizerResponse("the answer is not a JSON object")
    principal_id = response.get("principalId")
    if not isinstance(principal_id, str) or not principal_id:
        raise MalformedAuthorizerResponse("principalId is missing or not a string")
    policy = response.get("policyDocument")
    if not isinstance(policy, dict):
        raise MalformedAuthorizerResponse("policyDocument is missing")
    statements = policy.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not all(isinstance(s, dict) for s in statements):
        raise MalformedAuthorizerResponse("policyDocument.Statement is not a list of objects")
    context = response.get("context") or {}
    if not isinstance(context, dict):
        raise MalformedAuthorizerResponse("context is not an object")
    for key, value in context.items():
        # JSON numbers arrive as int or float; bool is an int subclass and allowed too.
        if not isinstance(value, str | int | float):
            raise MalformedAuthorizerResponse(
                f"context value {key!r} is not a string, number or boolean"
            )
    return principal_id, statements, context


def _applies(statement: dict[str, Any], method_arn: str) -> bool:
    """Whether the statement names the invoke action on this ARN (IAM's * and ? wildcards)."""
    actions = _as_list(statement.get("Action"))
    resources = _as_list(statement.get("Resource"))
    # IAM compares action names case-insensitively and resources case-sensitively.
    return any(_wildcard_match(a.lower(), INVOKE_ACTION.lower()) for a in actions) and any(
        _wildcard_match(r, method_arn) for r in resources
    )


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _wildcard_match(pattern: str, value: str) -> bool:
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None
