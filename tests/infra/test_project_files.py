"""cdk.json, package.json and the layer cache."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import aws_cdk
import pytest

from infra.stacks.config import LAYER_CACHE_DIR, REPO_ROOT, Settings, retention
from infra.stacks.layer import layer_key

from .conftest import Synth

pytestmark = pytest.mark.infra

CDK_JSON = json.loads((REPO_ROOT / "cdk.json").read_text())


def _recommended_flags() -> dict[str, object]:
    (bundle,) = (Path(aws_cdk.__file__).parent / "_jsii").glob("aws-cdk-lib@*.jsii.tgz")
    with tarfile.open(bundle) as tar:
        member = tar.extractfile("package/recommended-feature-flags.json")
        assert member is not None
        flags: dict[str, object] = json.load(member)
    return flags


def test_cdk_json_app_and_output() -> None:
    assert CDK_JSON["app"] == "python3 -m infra.app"
    assert CDK_JSON["output"] == "cdk.out"


def test_cdk_json_has_every_recommended_flag() -> None:
    context = CDK_JSON["context"]
    assert context["@aws-cdk/aws-autoscaling:generateLaunchTemplateInsteadOfLaunchConfig"] is True
    missing = {
        flag: value for flag, value in _recommended_flags().items() if context.get(flag) != value
    }
    assert missing == {}


def test_cli_is_pinned() -> None:
    package = json.loads((REPO_ROOT / "package.json").read_text())
    assert package["devDependencies"]["aws-cdk"] == "2.1148.1"
    assert {"synth", "deploy"} <= set(package["scripts"])
    lock = json.loads((REPO_ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/aws-cdk"]["version"] == "2.1148.1"


def test_layer_cache_is_populated(synth: Synth) -> None:
    cached = LAYER_CACHE_DIR / layer_key()
    assert (cached / ".complete").read_text().strip() == layer_key()
    assert (cached / "python" / "fastapi").is_dir()


def test_synth_time(synth: Synth) -> None:
    # Generous bound (2 cores); a layer cache miss adds a pip download on first run only.
    assert synth.seconds < 90, f"synth took {synth.seconds:.1f}s"


def test_settings_from_context() -> None:
    app = aws_cdk.App(
        context={
            "townhall:mediaInstanceType": "c6g.xlarge",
            "townhall:mediaMaxCapacity": "4",
            "townhall:manageApiGatewayAccount": "false",
            "townhall:region": "eu-central-1",
        }
    )
    settings = Settings.from_context(app)
    assert settings.media_instance_type == "c6g.xlarge"
    assert settings.media_max_capacity == 4
    assert settings.manage_api_gateway_account is False
    assert settings.region == "eu-central-1"
    assert Settings.from_context(aws_cdk.App()) == Settings()
    with pytest.raises(ValueError):
        retention(13)


def test_synth_needs_no_context_lookups(synth: Synth) -> None:
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    assert "missing" not in manifest  # no AZ/VPC/AMI lookups: synth works offline
    stacks = [a for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"]
    assert {a["environment"] for a in stacks} == {"aws://unknown-account/us-east-1"}
