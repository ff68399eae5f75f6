"""Entry point of the CDK app: ``cdk synth`` runs ``python3 -m infra.app`` from the repo root.

The stacks are environment-agnostic (no account or Region is baked in, so no AZ lookups are
needed): ``cdk deploy`` deploys them to the account and Region of the caller's credentials.
cdk-nag's AwsSolutions pack runs as a validation plugin: an unacknowledged finding fails the
synth.
"""

from __future__ import annotations

import json
import os
from typing import Any

# Node 20 is past its end of life for jsii; this is the variable that silences that banner
# (JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION does not). It must be set before jsii starts.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

import aws_cdk as cdk

from infra.stacks import TownhallStacks, build_app
from infra.stacks.config import REPO_ROOT

CDK_JSON = REPO_ROOT / "cdk.json"


def cdk_json_context() -> dict[str, Any]:
    """The context block of cdk.json (feature flags and townhall:* settings)."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text())["context"]
    return context


def make_app(outdir: str | None = None, extra_context: dict[str, Any] | None = None) -> cdk.App:
    """An App with cdk.json's context even when run without the CLI (python -m infra.app)."""
    # The CLI hands cdk.json's context over in CDK_CONTEXT_JSON; without the CLI, read it here.
    context = {} if "CDK_CONTEXT_JSON" in os.environ else cdk_json_context()
    context.update(extra_context or {})
    return cdk.App(outdir=outdir, context=context or None)


def main() -> tuple[cdk.App, TownhallStacks]:
    app = make_app()
    stacks = build_app(app)
    app.synth()
    return app, stacks


if __name__ == "__main__":
    main()
