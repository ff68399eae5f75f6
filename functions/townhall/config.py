"""Settings the handlers read from their environment, in one typed place.

CDK sets these variables on each Lambda; the local twin sets the same names before it calls the
same handlers. Nothing here imports boto3, so domain modules stay importable without AWS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from townhall import functions, schema

DEFAULT_WEBHOOK_TIMEOUT_SECONDS = 10.0


def _bounded(env: dict[str, str], name: str, default: float, low: float, high: float) -> float:
    """A number from the environment, refused (at start, loudly) outside [low, high]."""
    raw = env.get(name)
    if not raw:
        return default
    number = float(raw)
    if not low <= number <= high:
        raise ValueError(f"{name} must be {low} to {high}")
    return number


@dataclass(frozen=True)
class Settings:
    accounts_table: str
    meetings_table: str
    connections_table: str
    idempotency_table: str
    media_nodes_table: str
    signing_key_secret_arn: str | None
    signing_key_file: str | None
    ws_management_endpoint: str | None
    public_base_url: str | None
    turn_urls: tuple[str, ...] = ()
    turn_secret_arn: str | None = None
    turn_secret_file: str | None = None
    turn_media_node_urls: tuple[str, ...] = ()
    organisations_table: str = f"townhall-{schema.ORGANISATIONS.logical_id.lower()}"
    webhook_queue_url: str | None = None
    webhook_dead_letter_url: str | None = None
    webhook_allow_loopback: bool = False
    webhook_retry_time_scale: float = 1.0
    webhook_timeout_seconds: float = DEFAULT_WEBHOOK_TIMEOUT_SECONDS

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ) if env is None else env

        def table(spec: schema.TableSpec) -> str:
            return env.get(spec.env_var, f"townhall-{spec.logical_id.lower()}")

        return cls(
            accounts_table=table(schema.ACCOUNTS),
            meetings_table=table(schema.MEETINGS),
            connections_table=table(schema.CONNECTIONS),
            idempotency_table=table(schema.IDEMPOTENCY),
            media_nodes_table=table(schema.MEDIA_NODES),
            signing_key_secret_arn=env.get(functions.ENV_SIGNING_KEY_SECRET_ARN) or None,
            signing_key_file=env.get(functions.ENV_SIGNING_KEY_FILE) or None,
            ws_management_endpoint=env.get(functions.ENV_WS_MANAGEMENT_ENDPOINT) or None,
            public_base_url=(env.get(functions.ENV_PUBLIC_BASE_URL) or "").rstrip("/") or None,
            turn_urls=tuple(env.get(functions.ENV_TURN_URLS, "").split()),
            turn_secret_arn=env.get(functions.ENV_TURN_SECRET_ARN) or None,
            turn_secret_file=env.get(functions.ENV_TURN_SECRET_FILE) or None,
            turn_media_node_urls=tuple(env.get(functions.ENV_TURN_MEDIA_NODE_URLS, "").split()),
            organisations_table=table(schema.ORGANISATIONS),
            webhook_queue_url=env.get(functions.WEBHOOK_DELIVERIES.env_var) or None,
            webhook_dead_letter_url=env.get(functions.WEBHOOK_DELIVERIES.dead_letter_env_var)
            or None,
            webhook_allow_loopback=env.get(functions.ENV_WEBHOOK_ALLOW_LOOPBACK) == "1",
            webhook_retry_time_scale=_bounded(
                env, functions.ENV_WEBHOOK_RETRY_TIME_SCALE, 1.0, 1e-9, 1.0
            ),
            webhook_timeout_seconds=_bounded(
                env, functions.ENV_WEBHOOK_TIMEOUT_SECONDS, DEFAULT_WEBHOOK_TIMEOUT_SECONDS, 0.5, 30
            ),
        )
