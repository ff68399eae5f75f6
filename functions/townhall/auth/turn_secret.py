"""The secret the TURN servers share with the control plane (`townhall.media.turn` derives
credentials from it): Secrets Manager in AWS, a file the twin writes locally. Loaded once per
source and process."""

from __future__ import annotations

import threading
from pathlib import Path

from townhall.config import Settings

_lock = threading.Lock()
_cached: dict[tuple[str | None, str | None], bytes] = {}


def load_turn_secret(settings: Settings) -> bytes:
    source = (settings.turn_secret_arn, settings.turn_secret_file)
    with _lock:
        if source not in _cached:
            _cached[source] = _load(settings)
        return _cached[source]


def _load(settings: Settings) -> bytes:
    if settings.turn_secret_arn:
        import boto3  # only in AWS: keeps the twin's and the tests' imports light

        client = boto3.client("secretsmanager")
        value = client.get_secret_value(SecretId=settings.turn_secret_arn)["SecretString"]
        return str(value).strip().encode()
    if settings.turn_secret_file:
        return Path(settings.turn_secret_file).read_text().strip().encode()
    raise RuntimeError(
        "TURN_URLS is set but no secret: set TURN_SECRET_ARN (AWS) or TURN_SECRET_FILE (local)"
    )
