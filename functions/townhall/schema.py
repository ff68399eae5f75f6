"""DynamoDB table definitions: the one source for the CDK data stack and the local twin.

Each table is described once here. `infra/` turns a `TableSpec` into a `TableV2`, and the
twin turns it into a `create_table` call against its moto server, so the two cannot drift.
The access patterns behind each key are written down in `docs/data-model.md`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class KeySpec:
    name: str
    type: str = "S"  # DynamoDB scalar type: S, N or B


@dataclass(frozen=True)
class IndexSpec:
    name: str
    partition_key: KeySpec
    sort_key: KeySpec | None = None


@dataclass(frozen=True)
class TableSpec:
    # Logical id: the CDK construct id and the suffix of the table's name in the twin.
    logical_id: str
    # Environment variable through which every Lambda learns the table's physical name.
    env_var: str
    partition_key: KeySpec
    sort_key: KeySpec | None = None
    ttl_attribute: str | None = None
    indexes: tuple[IndexSpec, ...] = field(default_factory=tuple)
    # The table's stream, if it has one: "NEW_IMAGE" (what the outbox consumer reads), or
    # another DynamoDB StreamViewType.
    stream_view: str | None = None


ACCOUNTS = TableSpec(
    logical_id="Accounts",
    env_var="ACCOUNTS_TABLE",
    partition_key=KeySpec("pk"),
    ttl_attribute="ttl",
)

MEETINGS = TableSpec(
    logical_id="Meetings",
    env_var="MEETINGS_TABLE",
    partition_key=KeySpec("pk"),
    sort_key=KeySpec("sk"),
    ttl_attribute="ttl",
    indexes=(IndexSpec("by_host", KeySpec("host_id"), KeySpec("start_utc")),),
    # The outbox: event items written with each change are delivered from this stream.
    stream_view="NEW_IMAGE",
)

CONNECTIONS = TableSpec(
    logical_id="Connections",
    env_var="CONNECTIONS_TABLE",
    partition_key=KeySpec("connection_id"),
    ttl_attribute="ttl",
)

# Powertools' idempotency persistence layer: its default key and expiry attribute names.
IDEMPOTENCY = TableSpec(
    logical_id="Idempotency",
    env_var="IDEMPOTENCY_TABLE",
    partition_key=KeySpec("id"),
    ttl_attribute="expiration",
)

# The media-node registry: each SFU node's address, capacity, load and state, kept alive by a
# heartbeat that refreshes `ttl`.
MEDIA_NODES = TableSpec(
    logical_id="MediaNodes",
    env_var="MEDIA_NODES_TABLE",
    partition_key=KeySpec("node_id"),
    ttl_attribute="ttl",
)

# Organisations and what hangs off them: each organisation, its members (one item per account,
# so an account is in one organisation), its API keys and their per-second rate windows, and
# (later) its webhook subscriptions. `by_org` lists an organisation's members and keys.
ORGANISATIONS = TableSpec(
    logical_id="Organisations",
    env_var="ORGANISATIONS_TABLE",
    partition_key=KeySpec("pk"),
    sort_key=KeySpec("sk"),
    ttl_attribute="ttl",
    indexes=(IndexSpec("by_org", KeySpec("org_id"), KeySpec("org_sk")),),
)

ALL_TABLES: tuple[TableSpec, ...] = (
    ACCOUNTS,
    MEETINGS,
    CONNECTIONS,
    IDEMPOTENCY,
    MEDIA_NODES,
    ORGANISATIONS,
)
