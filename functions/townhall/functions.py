"""The control plane's Lambda functions: one source for the CDK stacks and the local twin.

Each spec names the handler (a module path inside `functions/`, which is the code asset as it
stands), the tables it touches and how, and the other rights it needs. The CDK app grants
exactly these rights and no more; the twin calls exactly these handlers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from contracts.signaling_events import EventName
from townhall import schema

Access = Literal["read", "write", "read_write"]


@dataclass(frozen=True)
class QueueSpec:
    """An SQS queue and its dead-letter queue: one source for CDK and the twin (which makes
    them on its moto server). Both are encrypted and refuse requests without TLS in AWS."""

    logical_id: str
    # The variable through which a function learns the queue's URL, and the dead-letter's.
    env_var: str
    dead_letter_env_var: str
    # At least six times the consuming function's timeout (AWS's advice for SQS sources).
    visibility_timeout_seconds: int
    retention_days: int
    # Receives before a message is moved to the dead-letter queue (a sender that keeps failing
    # on it: an error in our code, not the receiver's; those are retried by the schedule).
    max_receive_count: int
    dead_letter_retention_days: int = 14


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
    # Queues it sends to (sqs:SendMessage on the queue and its dead-letter queue).
    sends_to: tuple[QueueSpec, ...] = ()


# Webhook deliveries, each message a pointer to a delivery item (townhall.webhooks.queue).
WEBHOOK_DELIVERIES = QueueSpec(
    logical_id="WebhookDeliveries",
    env_var="WEBHOOK_QUEUE_URL",
    dead_letter_env_var="WEBHOOK_DEAD_LETTER_QUEUE_URL",
    visibility_timeout_seconds=6 * 60,
    retention_days=4,
    max_receive_count=5,
)

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
    # Replaying webhook deliveries.
    sends_to=(WEBHOOK_DELIVERIES,),
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

# The outbox's second consumer (WEBHOOK_EVENTS): the events partners subscribe to, each turned
# into a delivery item and a queue message per subscription that takes it.
WEBHOOK_ENQUEUE = FunctionSpec(
    logical_id="WebhookEnqueueFunction",
    handler="handlers.webhook_enqueue.handler",
    tables=((schema.MEETINGS, "read"), (schema.ORGANISATIONS, "read_write")),
    timeout_seconds=60,
    memory_mb=512,
    sends_to=(WEBHOOK_DELIVERIES,),
)

# Signs and posts webhook deliveries from WEBHOOK_DELIVERIES; re-enqueues retries.
WEBHOOK_SENDER = FunctionSpec(
    logical_id="WebhookSenderFunction",
    handler="handlers.webhook_sender.handler",
    tables=((schema.ORGANISATIONS, "read_write"),),
    timeout_seconds=60,
    memory_mb=512,
    sends_to=(WEBHOOK_DELIVERIES,),
)

ALL_FUNCTIONS: tuple[FunctionSpec, ...] = (
    HTTP_API,
    WS_AUTHORIZER,
    WS_CONNECT,
    WS_DISCONNECT,
    WS_SIGNALING,
    OUTBOX_FANOUT,
    OUTBOX_SLICE,
    WEBHOOK_ENQUEUE,
    WEBHOOK_SENDER,
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

# The outbox events webhooks carry (townhall.webhooks.events maps each to a webhook event).
WEBHOOK_SOURCE_EVENTS: tuple[str, ...] = (
    EventName.SESSION_STARTED.value,
    EventName.MEETING_ENDED.value,
    EventName.PARTICIPANT_JOINED.value,
    EventName.PARTICIPANT_LEFT.value,
    EventName.PARTICIPANT_REMOVED.value,
    EventName.POLL_CLOSED.value,
    EventName.QA_UPDATED.value,
)

# The webhook consumer: its own mapping, so its failures, retries and speed are its own (see
# townhall.outbox.webhooks for why not a branch of the fan-out consumer).
WEBHOOK_EVENTS = StreamSourceSpec(
    logical_id="WebhookEvents",
    table=schema.MEETINGS,
    function=WEBHOOK_ENQUEUE,
    # New event items of the types webhooks carry (WEBHOOK_SOURCE_EVENTS).
    filters=(
        {
            "eventName": ["INSERT"],
            "dynamodb": {
                "Keys": {"sk": {"S": [{"prefix": "E#"}]}},
                "NewImage": {"type": {"S": list(WEBHOOK_SOURCE_EVENTS)}},
            },
        },
    ),
    batch_size=100,
    batching_window_seconds=0,
    parallelization_factor=10,
    bisect_on_error=True,
    # Partners want every event, late or not: more retries, and a day's age (the stream's).
    retry_attempts=10,
    max_record_age_seconds=86_400,
)

ALL_STREAM_SOURCES: tuple[StreamSourceSpec, ...] = (OUTBOX_DELIVERY, WEBHOOK_EVENTS)


@dataclass(frozen=True)
class QueueSourceSpec:
    """An SQS queue that invokes a function (Lambda's event source mapping for SQS): CDK's
    mapping and the twin's poller are both built from this."""

    logical_id: str
    queue: QueueSpec
    function: FunctionSpec
    batch_size: int
    batching_window_seconds: int
    # The most concurrent invocations the mapping makes (Lambda: 2 to 1,000).
    max_concurrency: int
    report_batch_item_failures: bool = True


WEBHOOK_SENDING = QueueSourceSpec(
    logical_id="WebhookSending",
    queue=WEBHOOK_DELIVERIES,
    function=WEBHOOK_SENDER,
    # Ten messages are posted at once by one invocation (townhall.webhooks.sender).
    batch_size=10,
    batching_window_seconds=0,
    # Bounds what a storm of slow receivers can take of the account's concurrency.
    max_concurrency=20,
)

ALL_QUEUES: tuple[QueueSpec, ...] = (WEBHOOK_DELIVERIES,)
ALL_QUEUE_SOURCES: tuple[QueueSourceSpec, ...] = (WEBHOOK_SENDING,)

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
# Webhooks (townhall.webhooks). Never set by CDK: loopback receivers and plain http (the twin's
# own receivers), and the clock seam that runs the retry schedule fast (tests/infra checks).
ENV_WEBHOOK_ALLOW_LOOPBACK = "WEBHOOK_ALLOW_LOOPBACK"
ENV_WEBHOOK_RETRY_TIME_SCALE = "WEBHOOK_RETRY_TIME_SCALE"
# Seconds one attempt may take (connect, send, answer); default 10.
ENV_WEBHOOK_TIMEOUT_SECONDS = "WEBHOOK_TIMEOUT_SECONDS"
TWIN_ONLY_ENV = (ENV_WEBHOOK_ALLOW_LOOPBACK, ENV_WEBHOOK_RETRY_TIME_SCALE)
