"""cdk-nag acknowledgments in one place, each with its reason.

cdk-nag 3.x is a CDK policy-validation plugin (``Validations.of(app).add_plugins(...)``), not an
Aspect: a finding is acknowledged with ``Validations.of(construct).acknowledge(...)``, which
covers the construct and everything under it (what v2 called ``apply_to_children``). Each
acknowledgment names one rule, or one finding of a rule (``AwsSolutions-IAM5[Resource::...]``),
so no rule family is ever waved through wholesale.

Every acknowledgment made through :func:`acknowledge` is also recorded in :data:`REGISTRY`,
so the tests and ``docs/infra.md`` can list them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import aws_cdk as cdk
from constructs import IConstruct


@dataclass(frozen=True)
class Acknowledged:
    path: str
    rule: str
    reason: str


REGISTRY: list[Acknowledged] = []


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one cdk-nag rule (or one finding of it) on ``scope`` and its children."""
    if not rule.startswith("AwsSolutions-"):
        raise ValueError(f"not an AwsSolutions rule id: {rule!r}")
    if len(reason.strip()) < 20:
        raise ValueError(f"acknowledging {rule} needs a specific reason, got {reason!r}")
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))
    REGISTRY.append(Acknowledged(scope.node.path, rule, reason))


def flatten(scope: IConstruct, value: object) -> str:
    """Render a value the way cdk-nag names it in a finding (its ``flattenCfnReference``).

    Only for values whose references are in ``scope``'s own stack: references to other stacks
    are rewritten later in the synth and would render differently.
    """

    def visit(node: object) -> str:
        if node is None:
            return ""
        if isinstance(node, str):
            return node.replace("${", "<").replace("}", ">")
        if isinstance(node, dict):
            if "Fn::Join" in node:
                delimiter, items = node["Fn::Join"]
                return str(delimiter).join(visit(item) for item in items)
            if "Fn::Sub" in node:
                return visit(node["Fn::Sub"])
            if "Fn::GetAtt" in node:
                resource, attribute = node["Fn::GetAtt"]
                return f"<{visit(resource)}.{visit(attribute)}>"
            if "Fn::ImportValue" in node:
                return visit(node["Fn::ImportValue"])
            if "Ref" in node:
                return f"<{visit(node['Ref'])}>"
        return json.dumps(node, separators=(",", ":"))

    return visit(cdk.Stack.of(scope).resolve(value))


def acknowledge_wildcard_resource(scope: IConstruct, resource: str, reason: str) -> None:
    """Acknowledge the IAM5 finding for one resource ARN (rendered as cdk-nag renders it)."""
    acknowledge(scope, f"AwsSolutions-IAM5[Resource::{flatten(scope, resource)}]", reason)
