"""Small readers over synthesized CloudFormation templates."""

from __future__ import annotations

import json
from typing import Any


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_statements(template: dict[str, Any], role_logical_id: str) -> list[dict[str, Any]]:
    """Every statement of every AWS::IAM::Policy attached to the role, plus inline policies."""
    statements: list[dict[str, Any]] = []
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        if {"Ref": role_logical_id} not in resource["Properties"].get("Roles", []):
            continue
        statements += as_list(resource["Properties"]["PolicyDocument"]["Statement"])
    role = template["Resources"][role_logical_id]
    for inline in role["Properties"].get("Policies", []):
        statements += as_list(inline["PolicyDocument"]["Statement"])
    return statements


def actions(statement: dict[str, Any]) -> set[str]:
    return set(as_list(statement["Action"]))


def mentions(value: Any, needle: str) -> bool:
    return needle in json.dumps(value)


def user_data_text(launch_template: dict[str, Any]) -> str:
    """The user data script, with intrinsic functions rendered as JSON inline."""
    data = launch_template["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]
    if isinstance(data, str):
        return data
    delimiter, parts = data["Fn::Join"]
    return str(delimiter).join(p if isinstance(p, str) else json.dumps(p) for p in parts)
