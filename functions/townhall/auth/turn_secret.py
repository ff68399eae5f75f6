"""The secret the TURN servers share with the control plane (`townhall.media.turn` derives
credentials from it): Secrets Manager in AWS, a file the twin writes locally. Loaded once per
source and process."""

from __future__ import annotations

import functools
from pathlib import Path

from townhall.config import Settings


def load_turn_secret(settings: Settings) -> bytes:
    return _load(settings.turn_secret_arn, settings.turn_secret_file)


@functools.cache
def _load(secret_arn: str | None, secret_file: str | None) -> bytes:
    if secret_arn:
        import boto3  # only in AWS: keeps the twin's and the tests' imports light

        client = boto3.client("secretsmanager")
        value = client.get_secret_value(SecretId=secret_arn)["SecretString"]
        return str(value).strip().encode()
    if secret_file:
        return Path(secret_file).read_text().strip().encode()
    raise RuntimeError(
        "TURN_URLS is set but no secret: set TURN_SECRET_ARN (AWS) or TURN_SECRET_FILE (local)"
    )
