"""How the twin judges a WebSocket REQUEST authorizer's answer (as API Gateway does)."""

from __future__ import annotations

from typing import Any

import pytest

from infra.twin.authorizer_policy import judge

ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123defg/ws/$connect"


def answer(effect: str = "Allow", resource: Any = ARN, **extra: Any) -> dict[str, Any]:
    statement = {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}
    return {
        "principalId": "user-1",
        "policyDocument": {"Version": "2012-10-17", "Statement": [statement]},
        **extra,
    }


def test_allow_carries_principal_and_context() -> None:
    decision = judge(answer(context={"meetingId": "m-1", "seats": 3, "host": True}), ARN)
    assert decision.allowed
    assert decision.authorizer == {
        "principalId": "user-1",
        "meetingId": "m-1",
        "seats": 3,
        "host": True,
    }


@pytest.mark.parametrize(
    "resource",
    [
        "arn:aws:execute-api:us-east-1:123456789012:abc123defg/ws/*",
        "arn:aws:execute-api:*:*:abc123defg/*",
        ["arn:aws:execute-api:us-east-1:123456789012:other/ws/*", ARN],
        "arn:aws:execute-api:us-east-1:123456789012:abc123defg/ws/$connec?",
    ],
)
def test_wildcard_resources_match(resource: Any) -> None:
    assert judge(answer(resource=resource), ARN).allowed


def test_explicit_deny_is_403() -> None:
    decision = judge(answer(effect="Deny"), ARN)
    assert (decision.allowed, decision.status) == (False, 403)


def test_deny_beats_allow() -> None:
    both = answer()
    both["policyDocument"]["Statement"].append(
        {"Action": "execute-api:*", "Effect": "Deny", "Resource": "*"}
    )
    assert judge(both, ARN).status == 403


def test_allow_for_another_resource_is_403() -> None:
    other = "arn:aws:execute-api:us-east-1:123456789012:otherapi00/ws/$connect"
    assert judge(answer(resource=other), ARN).status == 403


def test_allow_for_another_action_is_403() -> None:
    wrong_action = answer()
    wrong_action["policyDocument"]["Statement"][0]["Action"] = "execute-api:ManageConnections"
    assert judge(wrong_action, ARN).status == 403


@pytest.mark.parametrize(
    "malformed",
    [
        None,
        "Allow",
        {"policyDocument": answer()["policyDocument"]},  # no principalId
        {"principalId": "user-1"},  # no policy
        answer(context={"nested": {"a": 1}}),
        answer(context={"list": [1]}),
        answer(context={"null": None}),
        answer(context="not an object"),
    ],
)
def test_malformed_answers_are_500(malformed: Any) -> None:
    assert judge(malformed, ARN).status == 500
