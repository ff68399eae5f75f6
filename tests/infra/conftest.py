"""Synthesize the real CDK app once per test session and share the result.

The app is built exactly as ``infra.app`` builds it (same cdk.json context, same stacks, same
cdk-nag plugin). One context value differs: the synth does not abort on validation findings,
so that ``test_lint_and_nag.py`` can report them as a test failure instead of a fixture error.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from infra.app import make_app
from infra.stacks import TownhallStacks, build_app
from infra.stacks.config import Settings
from infra.stacks.data import DataStack
from infra.stacks.turn import TurnStack

FAIL_SYNTH_ON_VALIDATION_ERRORS = "@aws-cdk/core:failSynthOnValidationErrors"


@dataclass
class Synth:
    app: cdk.App
    stacks: TownhallStacks
    outdir: Path
    seconds: float
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    _assertions: dict[str, Template] = field(default_factory=dict)

    def template(self, stack: cdk.Stack) -> dict[str, Any]:
        return self.templates[stack.stack_name]

    def assertions(self, stack: cdk.Stack) -> Template:
        if stack.stack_name not in self._assertions:
            self._assertions[stack.stack_name] = Template.from_json(
                self.template(stack), skip_cyclical_dependencies_check=True
            )
        return self._assertions[stack.stack_name]

    def resources(self, stack: cdk.Stack, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.template(stack)["Resources"].items()
            if resource["Type"] == cfn_type
        }

    @staticmethod
    def logical_id(construct: Any) -> str:
        """The logical id of a construct's CfnResource (or of a CfnElement itself)."""
        element = (
            construct if isinstance(construct, cdk.CfnElement) else construct.node.default_child
        )
        stack = cdk.Stack.of(element)
        return str(stack.resolve(stack.get_logical_id(element)))


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    outdir = tmp_path_factory.mktemp("cdk.out")
    started = time.perf_counter()
    app = make_app(outdir=str(outdir), extra_context={FAIL_SYNTH_ON_VALIDATION_ERRORS: False})
    stacks = build_app(app)
    app.synth()
    result = Synth(app, stacks, outdir, time.perf_counter() - started)
    for stack in stacks.all():
        path = outdir / stack.template_file
        result.templates[stack.stack_name] = json.loads(path.read_text())
    return result


TURN_TLS_CONTEXT = {
    "townhall:turnDomain": "turn.example.com",
    "townhall:turnCertificateArn": (
        "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
    ),
}


@dataclass
class TurnTls:
    """The TURN stack as a deployer with a domain gets it: only it and the data stack (no
    Lambda layer to bundle), synthesized once; cfn-lint and cdk-nag check it too."""

    app: cdk.App
    turn: TurnStack
    template: dict[str, Any]
    path: Path


@pytest.fixture(scope="session")
def turn_tls(tmp_path_factory: pytest.TempPathFactory) -> TurnTls:
    app = cdk.App(context=TURN_TLS_CONTEXT)
    settings = Settings.from_context(app)
    env = cdk.Environment(region=settings.region)
    data = DataStack(app, "Data", env=env)
    turn = TurnStack(app, "Turn", env=env, settings=settings, data=data)
    template = dict(Template.from_stack(turn).to_json())
    path = tmp_path_factory.mktemp("turn-tls") / "Turn.template.json"
    path.write_text(json.dumps(template))
    return TurnTls(app, turn, template, path)
