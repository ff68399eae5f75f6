"""The Lambda dependency layer, built without Docker.

`PipLayerBundling` is a CDK local bundler (``ILocalBundling``): it runs pip on this machine with
Lambda's platform tags (manylinux2014 aarch64, CPython 3.12, binary wheels only) into
``build/lambda-layer/<key>/python`` and copies that into the asset's output directory. The key is
the SHA-256 of ``functions/requirements.txt`` plus the pip platform flags, so a second synth,
or a synth into a fresh output directory (the tests), reuses the cache instead of downloading.
The asset hash is the same key, so CDK skips bundling altogether when ``cdk.out`` already holds
the asset. Docker is never used: if pip fails, synthesis fails with pip's output.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from .config import FUNCTIONS_DIR, LAYER_CACHE_DIR, REQUIREMENTS_FILE

PYTHON_VERSION = "3.12"
PIP_PLATFORM_ARGS = (
    "--platform",
    "manylinux2014_aarch64",
    "--implementation",
    "cp",
    "--python-version",
    PYTHON_VERSION,
    "--only-binary=:all:",
)
# Bump when the recipe below changes in a way the flags do not show.
RECIPE_VERSION = "1"


def layer_key(requirements: Path = REQUIREMENTS_FILE) -> str:
    digest = hashlib.sha256()
    digest.update(requirements.read_bytes())
    digest.update(("\0".join((RECIPE_VERSION, *PIP_PLATFORM_ARGS))).encode())
    return digest.hexdigest()


def build_layer_dir(
    requirements: Path = REQUIREMENTS_FILE, cache_root: Path = LAYER_CACHE_DIR
) -> Path:
    """Return ``cache_root/<key>``, holding ``python/<packages>``; run pip only on a miss."""
    key = layer_key(requirements)
    target = cache_root / key
    if (target / ".complete").exists():
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{key[:12]}.", suffix=".tmp", dir=cache_root))
    try:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",  # .pyc files from this interpreter would be useless on 3.12
            "--target",
            str(staging / "python"),
            *PIP_PLATFORM_ARGS,
            "-r",
            str(requirements),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(
                "building the Lambda layer failed:\n"
                f"$ {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}"
            )
        # Console scripts point at this machine's interpreter and are never run on Lambda.
        shutil.rmtree(staging / "python" / "bin", ignore_errors=True)
        (staging / ".complete").write_text(key + "\n")
        try:
            staging.rename(target)
        except OSError:
            # Another synth finished the same key first; theirs is as good as ours.
            if not (target / ".complete").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _copy_tree(src: Path, dst: Path) -> None:
    """Hard-link when the cache and the output share a filesystem, copy otherwise."""

    def link_or_copy(s: str, d: str) -> object:
        try:
            os.link(s, d)
            return d
        except OSError:
            return shutil.copy2(s, d)

    shutil.copytree(src, dst, copy_function=link_or_copy, dirs_exist_ok=True)


@jsii.implements(cdk.ILocalBundling)
class PipLayerBundling:
    """Local bundler for the dependency layer (see the module docstring)."""

    def __init__(self, requirements: Path = REQUIREMENTS_FILE, cache_root: Path = LAYER_CACHE_DIR):
        self.requirements = requirements
        self.cache_root = cache_root

    # jsii passes the bundling options as one positional struct; accept anything.
    def try_bundle(self, output_dir: str, *_args: Any, **_kwargs: Any) -> bool:
        cached = build_layer_dir(self.requirements, self.cache_root)
        _copy_tree(cached / "python", Path(output_dir) / "python")
        return True


class DependenciesLayer(Construct):
    """A Lambda layer with ``functions/requirements.txt`` installed for Python 3.12 on ARM64."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        key = layer_key()
        self.key = key
        code = lambda_.Code.from_asset(
            str(FUNCTIONS_DIR),
            asset_hash_type=cdk.AssetHashType.CUSTOM,
            asset_hash=key,
            bundling=cdk.BundlingOptions(
                # Never pulled: the local bundler always succeeds or raises.
                image=cdk.DockerImage.from_registry("public.ecr.aws/sam/build-python3.12"),
                local=PipLayerBundling(),
            ),
        )
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=code,
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_12],
            compatible_architectures=[lambda_.Architecture.ARM_64],
            description=f"Townhall runtime dependencies (requirements sha256 {key[:12]})",
        )
