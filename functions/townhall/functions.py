"""The control plane's Lambda functions: one source for the CDK stacks and the local twin.

Each spec names the handler (a module path inside `functions/`, which is the code asset as it
stands), the tables it touches and how, and the other rights it needs. The CDK app grants
exactly these rights and no more; the twin calls exactly these handlers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

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
    # Mints TURN credentials from the TURN servers' shared secret (townhall.media.turn).
    mints_turn_credentials: bool = False
    timeout_seconds: int = 10
    memory_mb: int = 512
    # Other functions this one invokes synchronously (lambda:InvokeFunction), each named to
    # it through the environment variable `invoke_env_var(spec)`.
    invokes: tuple[FunctionSpec, ...] = ()


HTTP_API = FunctionSpec(
    logical_id="HttpApiFunction",
    handler="handlers.http_api.handler",
    tables=(
        (schema.ACCOUNTS, "read_write"),
        (schema.MEETINGS, "read_write"),
        (schema.IDEMPOTENCY, "read_write"),
        (schema.ORGANISATIONS, "read_write"),
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
    mints_turn_credentials=True,
    timeout_seconds=15,
    memory_mb=1024,
)

# Posts one slice of a large meeting's connections the events of a batch, in order; invoked by
# OUTBOX_FANOUT, which waits for every slice. It reads nothing: the caller resolved the
# audiences, and reports back the connections that are gone.
OUTBOX_SLICE = FunctionSpec(
    logical_id="OutboxSliceFunction",
    handler="handlers.outbox_slice.handler",
    manages_connections=True,
    timeout_seconds=30,
    memory_mb=512,
)

# Reads the Meetings table's stream (OUTBOX_DELIVERY) and posts each event to the connections
# it concerns; cleans up gone connections (marking their participants offline, itself an event).
OUTBOX_FANOUT = FunctionSpec(
    logical_id="OutboxFanoutFunction",
    handler="handlers.outbox_fanout.handler",
    tables=((schema.CONNECTIONS, "read_write"), (schema.MEETINGS, "read_write")),
    manages_connections=True,
    timeout_seconds=60,
    memory_mb=1024,
    invokes=(OUTBOX_SLICE,),
)

ALL_FUNCTIONS: tuple[FunctionSpec, ...] = (
    HTTP_API,
    WS_AUTHORIZER,
    WS_CONNECT,
    WS_DISCONNECT,
    WS_SIGNALING,
    OUTBOX_FANOUT,
    OUTBOX_SLICE,
)


def invoke_env_var(target: FunctionSpec) -> str:
    """The variable through which a caller learns `target`'s function name (its logical id in
    the twin, the deployed name in AWS), e.g. OUTBOX_SLICE_FUNCTION."""
    name = target.logical_id.removesuffix("Function")
    snake = "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(name)).upper()
    return f"{snake}_FUNCTION"


@dataclass(frozen=True)
class StreamSourceSpec:
    """A DynamoDB stream that invokes a function: CDK's event source mapping and the twin's
    poller are both built from this, so they batch, filter and retry alike.

    The settings follow Lambda's event source mapping for DynamoDB Streams; see
    docs/outbox.md for why each value was chosen."""

    logical_id: str
    table: schema.TableSpec
    function: FunctionSpec
    # Lambda filter patterns (any one matches); the twin implements the operators used here.
    filters: tuple[dict[str, Any], ...]
    batch_size: int
    batching_window_seconds: int
    parallelization_factor: int
    bisect_on_error: bool
    retry_attempts: int
    max_record_age_seconds: int
    # The function answers {"batchItemFailures": [{"itemIdentifier": <SequenceNumber>}]}.
    report_batch_item_failures: bool = True


OUTBOX_DELIVERY = StreamSourceSpec(
    logical_id="OutboxDelivery",
    table=schema.MEETINGS,
    function=OUTBOX_FANOUT,
    # New event items only: not their TTL expiry (REMOVE) nor any other item of the table.
    filters=({"eventName": ["INSERT"], "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "E#"}]}}}},),
    # A busy meeting's events travel together; one roster read serves the whole batch.
    batch_size=100,
    # No waiting for a batch to fill: chat is interactive.
    batching_window_seconds=0,
    # Up to 10 batches of one shard at once; Lambda keeps order per partition key (one
    # session), so meetings on the same shard do not wait for each other.
    parallelization_factor=10,
    # A batch that fails is split until the failing record is alone...
    bisect_on_error=True,
    # ...which is tried twice more and then sent to the failure destination; an event that
    # late is no longer news, and the rest of its meeting must not wait behind it.
    retry_attempts=2,
    max_record_age_seconds=300,
)

ALL_STREAM_SOURCES: tuple[StreamSourceSpec, ...] = (OUTBOX_DELIVERY,)

# Environment variables the handlers read besides the table names (see townhall.config).
ENV_SIGNING_KEY_SECRET_ARN = "SIGNING_KEY_SECRET_ARN"  # AWS: secret whose string seeds the key
ENV_SIGNING_KEY_FILE = "SIGNING_KEY_FILE"  # twin: PEM file, generated on first use
ENV_WS_MANAGEMENT_ENDPOINT = "WS_MANAGEMENT_ENDPOINT"  # twin: overrides https://{domain}/{stage}
ENV_PUBLIC_BASE_URL = "PUBLIC_BASE_URL"  # optional: fixed origin for links (custom domain)
# TURN (townhall.media.turn): the URLs clients are given (space-separated; none: no TURN), and
# the servers' shared secret, from Secrets Manager in AWS or a file in the twin.
ENV_TURN_URLS = "TURN_URLS"
ENV_TURN_SECRET_ARN = "TURN_SECRET_ARN"
ENV_TURN_SECRET_FILE = "TURN_SECRET_FILE"
# Optional: `turn:` URLs the media nodes' side of each connection gathers a relay candidate on
# (docs/turn.md, "The media nodes' side"); none: nodes offer their own address only.
ENV_TURN_MEDIA_NODE_URLS = "TURN_MEDIA_NODE_URLS"
