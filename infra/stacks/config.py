"""Paths, names and tunables of the CDK app, read from cdk.json context where it makes sense."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import aws_logs as logs
from constructs import Construct

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = REPO_ROOT / "functions"
WEB_DIR = REPO_ROOT / "web"
REQUIREMENTS_FILE = FUNCTIONS_DIR / "requirements.txt"
LAYER_CACHE_DIR = REPO_ROOT / "build" / "lambda-layer"
ASSETS_DIR = Path(__file__).resolve().parent / "assets"

# The stacks import the shared specs (`townhall.schema`, `townhall.functions`, `townhall.routes`)
# from the Lambda code asset itself, so the CDK app and the handlers cannot drift apart.
if str(FUNCTIONS_DIR) not in sys.path:
    sys.path.insert(0, str(FUNCTIONS_DIR))

# Everything under functions/ that must not ship in the function code asset.
FUNCTION_ASSET_EXCLUDES = [
    "**/__pycache__",
    "**/*.pyc",
    "**/.pytest_cache",
    "**/.mypy_cache",
    "**/.ruff_cache",
    "tests",
    "**/tests",
    "requirements*.txt",
    "*.egg-info",
]

# Files under web/ that are build inputs, not things the browser should fetch.
WEB_ASSET_EXCLUDES = [
    "node_modules",
    "node_modules/**",
    "package.json",
    "package-lock.json",
    "**/*.test.js",
    "tests",
    "tests/**",
    ".DS_Store",
]

METRICS_NAMESPACE = "Townhall"
MEDIA_METRICS_NAMESPACE = "Townhall/Media"
MEDIA_LOAD_METRIC = "NodeLoad"
MEDIA_DRAIN_HOOK_NAME = "townhall-media-drain"

CONTEXT_PREFIX = "townhall:"


@dataclass(frozen=True)
class Settings:
    """Tunables; each can be overridden with ``-c townhall:<name>=<value>`` or in cdk.json."""

    prefix: str = "Townhall"
    # The Region is pinned (TableV2 with a customer-managed key cannot render in a
    # Region-agnostic stack); the account is not, so synth never looks anything up.
    region: str = "us-east-1"
    log_level: str = "INFO"
    log_retention_days: int = 30
    access_log_retention_days: int = 90
    http_rate_limit: int = 200
    http_burst_limit: int = 400
    ws_rate_limit: int = 500
    ws_burst_limit: int = 1000
    # Requests per client IP in any 5 minutes before the CloudFront web ACL blocks it. High on
    # purpose: a whole office behind one NAT may join the same meeting.
    waf_rate_limit: int = 20000
    # Requests per partner API key in any 60 s before the web ACL blocks the key: the highest
    # per-second rate a key can be given (townhall.auth.api_keys.MAX_RATE_PER_SECOND), over a
    # minute. The exact per-key limit is the API's own (429); this stops floods at the edge.
    waf_key_rate_limit: int = 6000
    media_instance_type: str = "c7g.large"
    media_min_capacity: int = 1
    media_max_capacity: int = 10
    media_target_load: int = 60
    media_udp_port_min: int = 40000
    media_udp_port_max: int = 49999
    media_control_port: int = 7880
    media_drain_minutes: int = 15
    # TURN (infra/stacks/turn.py, docs/turn.md): coturn on a small group of its own behind an
    # internet-facing Network Load Balancer.
    turn_instance_type: str = "t4g.small"
    turn_min_capacity: int = 1
    turn_max_capacity: int = 4
    # Relayed traffic an instance sends, in Mbit/s, that target tracking keeps the group at.
    turn_target_mbps: int = 100
    turn_relay_port_min: int = 49152
    turn_relay_port_max: int = 65535
    # TURN over TLS on 443 (`turns:`), terminated by the load balancer: both or neither. The
    # domain must be a DNS name the deployer points at the load balancer's DNS name (output
    # TurnLoadBalancerDnsName), and the ACM certificate (same Region) must cover it.
    turn_domain: str = ""
    turn_certificate_arn: str = ""
    # The media nodes' side of each connection gathers a relay candidate on TURN too (UDP):
    # for nodes whose own address clients may not reach. Off by default: nodes announce a
    # public address, and aiortc gathers before it answers, so every join would wait on TURN.
    turn_for_media_nodes: bool = False
    # API Gateway needs an account-level CloudWatch role before a WebSocket stage may log.
    # It is one setting per account and Region: turn this off where something else owns it.
    manage_api_gateway_account: bool = True
    alarm_email: str = ""

    @classmethod
    def from_context(cls, scope: Construct) -> Settings:
        values: dict[str, object] = {}
        for name, field in cls.__dataclass_fields__.items():
            key = CONTEXT_PREFIX + _camel(name)
            raw = scope.node.try_get_context(key)
            if raw is None:
                continue
            default = field.default
            if isinstance(default, bool):
                values[name] = raw if isinstance(raw, bool) else str(raw).lower() in {"1", "true"}
            elif isinstance(default, int):
                values[name] = int(raw)
            else:
                values[name] = str(raw)
        return cls(**values)  # type: ignore[arg-type]

    def stack_name(self, part: str) -> str:
        return f"{self.prefix}-{part}"


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(word.capitalize() for word in rest)


def retention(days: int) -> logs.RetentionDays:
    """``logs.RetentionDays`` for a number of days (only the values CloudWatch Logs accepts)."""
    by_days = {
        1: logs.RetentionDays.ONE_DAY,
        3: logs.RetentionDays.THREE_DAYS,
        5: logs.RetentionDays.FIVE_DAYS,
        7: logs.RetentionDays.ONE_WEEK,
        14: logs.RetentionDays.TWO_WEEKS,
        30: logs.RetentionDays.ONE_MONTH,
        60: logs.RetentionDays.TWO_MONTHS,
        90: logs.RetentionDays.THREE_MONTHS,
        120: logs.RetentionDays.FOUR_MONTHS,
        150: logs.RetentionDays.FIVE_MONTHS,
        180: logs.RetentionDays.SIX_MONTHS,
        365: logs.RetentionDays.ONE_YEAR,
        400: logs.RetentionDays.THIRTEEN_MONTHS,
        545: logs.RetentionDays.EIGHTEEN_MONTHS,
        731: logs.RetentionDays.TWO_YEARS,
    }
    if days not in by_days:
        raise ValueError(f"unsupported log retention: {days} days (use one of {sorted(by_days)})")
    return by_days[days]
