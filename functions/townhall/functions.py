"""The control plane's Lambda functions: one source for the CDK stacks and the local twin.

Each spec names the handler (a module path inside `functions/`, which is the code asset as it
stands), the tables it touches and how, and the other rights it needs. The CDK app grants
exactly these rights and no more; the twin calls exactly these handlers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from townhall import schema

Access = Literal["read", "write", "read_write"]


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str
    tables: tuple[tuple[schema.TableSpec, Access], ...] = field(default_factory=tuple)
    # Posts to, reads and deletes WebSocket connections through the management API.
    manages_connections: bool = False
    # Reads the token-signing key (Secrets Manager in AWS, a key file in the twin).
    reads_signing_key: bool = False
    timeout_seconds: int = 10
    memory_mb: int = 512


HTTP_API = FunctionSpec(
    logical_id="HttpApiFunction",
    handler="handlers.http_api.handler",
    tables=(
        (schema.ACCOUNTS, "read_write"),
        (schema.MEETINGS, "read_write"),
        (schema.IDEMPOTENCY, "read_write"),
    ),
    reads_signing_key=True,
    timeout_seconds=15,
    memory_mb=1024,
)

WS_AUTHORIZER = FunctionSpec(
    logical_id="WsAuthorizerFunction",
    handler="handlers.ws_authorizer.handler",
    reads_signing_key=True,
    timeout_seconds=5,
    memory_mb=512,
)

WS_CONNECT = FunctionSpec(
    logical_id="WsConnectFunction",
    handler="handlers.ws_connect.handler",
    tables=((schema.CONNECTIONS, "write"), (schema.MEETINGS, "read")),
    timeout_seconds=5,
)

WS_DISCONNECT = FunctionSpec(
    logical_id="WsDisconnectFunction",
    handler="handlers.ws_disconnect.handler",
    tables=((schema.CONNECTIONS, "read_write"), (schema.MEETINGS, "read_write")),
    manages_connections=True,
)

# Serves `$default` and every action route of `townhall.routes.ACTIONS`. It places meetings on
# media nodes (reserving streams on the node's registry item) and signs media tokens.
WS_SIGNALING = FunctionSpec(
    logical_id="WsSignalingFunction",
    handler="handlers.ws_signaling.handler",
    tables=(
        (schema.CONNECTIONS, "read_write"),
        (schema.MEETINGS, "read_write"),
        (schema.MEDIA_NODES, "read_write"),
    ),
    manages_connections=True,
    reads_signing_key=True,
    timeout_seconds=15,
    memory_mb=1024,
)

ALL_FUNCTIONS: tuple[FunctionSpec, ...] = (
    HTTP_API,
    WS_AUTHORIZER,
    WS_CONNECT,
    WS_DISCONNECT,
    WS_SIGNALING,
)

# Environment variables the handlers read besides the table names (see townhall.config).
ENV_SIGNING_KEY_SECRET_ARN = "SIGNING_KEY_SECRET_ARN"  # AWS: secret whose string seeds the key
ENV_SIGNING_KEY_FILE = "SIGNING_KEY_FILE"  # twin: PEM file, generated on first use
ENV_WS_MANAGEMENT_ENDPOINT = "WS_MANAGEMENT_ENDPOINT"  # twin: overrides https://{domain}/{stage}
ENV_PUBLIC_BASE_URL = "PUBLIC_BASE_URL"  # optional: fixed origin for links (custom domain)
