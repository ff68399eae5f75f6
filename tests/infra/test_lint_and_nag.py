"""cfn-lint on every synthesized template, and cdk-nag (AwsSolutions) on the whole app.

cdk-nag 3.x is a CDK validation plugin, not an Aspect: findings go to the cloud assembly's
validation-report.json, not to construct annotations, so ``Annotations.from_stack(...)`` would
always come back empty. These tests read the report, and also run the rule pack directly over
the synthesized construct tree. Canary tests prove both checkers catch a real problem.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from infra.stacks import nag

from .conftest import FAIL_SYNTH_ON_VALIDATION_ERRORS, Synth, TurnTls

pytestmark = pytest.mark.infra

CFN_LINT = Path(sys.executable).with_name("cfn-lint")
# W3005 ("DependsOn already enforced by a GetAtt"): CDK's Lambda constructs add an explicit
# DependsOn on their role next to the GetAtt. Harmless, and not ours to change.
IGNORED_CHECKS = ["W3005"]


def _cfn_lint(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CFN_LINT), "--ignore-checks", *IGNORED_CHECKS, "--", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_cfn_lint_clean(synth: Synth, turn_tls: TurnTls) -> None:
    templates = [synth.outdir / stack.template_file for stack in synth.stacks.all()]
    templates.append(turn_tls.path)  # the TURN stack with TURN over TLS
    result = _cfn_lint(templates)
    # Exit code 0: no errors and no warnings other than the ignored ones.
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_cfn_lint_canary(tmp_path: Path) -> None:
    bad = tmp_path / "bad.template.json"
    bad.write_text(
        json.dumps(
            {"Resources": {"Table": {"Type": "AWS::DynamoDB::Table", "Properties": {"Nope": 1}}}}
        )
    )
    result = _cfn_lint([bad])
    assert result.returncode & 2, result.stdout  # bit 2: errors found
    assert "E3002" in result.stdout or "E3003" in result.stdout


def _violations(report: dict[str, Any]) -> list[str]:
    found = []
    for plugin in report.get("pluginReports", []):
        for violation in plugin.get("violations", []):
            if violation.get("severity") in ("error", "fatal", "warning"):
                where = [
                    r.get("constructPath") or r.get("resourceLogicalId")
                    for key in ("violatingConstructs", "violatingResources")
                    for r in violation.get(key, [])
                ]
                found.append(f"{plugin['pluginName']}: {violation['ruleName']} at {where}")
    return found


# Deliberate: without a TURN domain the stack warns at synth that TURN over TLS is off.
EXPECTED_WARNINGS = [
    "Construct Annotations: Annotation::townhall:turnWithoutTls at ['Townhall-Turn']",
]


def test_validation_report_is_clean(synth: Synth) -> None:
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    assert _violations(report) == EXPECTED_WARNINGS


def test_cdk_nag_finds_nothing_unacknowledged(synth: Synth) -> None:
    result = AwsSolutionsChecks().validate_scope(synth.app)
    messages = [
        f"{v.rule_name}: {[r.construct_path for r in v.violating_resources]}"
        for v in result.violations
    ]
    assert messages == []
    assert result.success


def test_validation_report_canary(tmp_path: Path) -> None:
    """The report reader sees a finding when the plugin runs inside a real synth."""
    app = cdk.App(outdir=str(tmp_path), context={FAIL_SYNTH_ON_VALIDATION_ERRORS: False})
    s3.Bucket(cdk.Stack(app, "Canary"), "Bucket")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert any("AwsSolutions-S1 at ['Canary/Bucket/Resource']" in v for v in _violations(report))


def test_cdk_nag_canary() -> None:
    """A bucket without SSL enforcement or access logs must be reported; acknowledging works."""
    app = cdk.App()
    stack = cdk.Stack(app, "Canary")
    bucket = s3.Bucket(stack, "Bucket", enforce_ssl=False)
    rules = {v.rule_name for v in AwsSolutionsChecks().validate_scope(app).violations}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules
    nag.acknowledge(bucket, "AwsSolutions-S1", "canary: acknowledged on purpose in a test")
    rules = {v.rule_name for v in AwsSolutionsChecks().validate_scope(app).violations}
    assert "AwsSolutions-S1" not in rules and "AwsSolutions-S10" in rules


def test_acknowledgments_are_specific(synth: Synth) -> None:
    acknowledged = [a for a in nag.REGISTRY if a.path.startswith("Townhall-")]
    assert acknowledged
    for ack in acknowledged:
        assert ack.rule.startswith("AwsSolutions-"), ack
        assert len(ack.reason) >= 40, ack
        if ack.rule.startswith(("AwsSolutions-IAM5", "AwsSolutions-IAM4")):
            assert "[" in ack.rule, f"{ack}: IAM findings are acknowledged one by one"
    # No acknowledgment on a whole stack: each one sits on the construct it is about.
    assert not [a for a in acknowledged if "/" not in a.path]
