"""Organisations, their members and their API keys (docs/partners.md).

Every host account belongs to exactly one organisation. An account that signs up founds its
own (it is the owner); accounts from before organisations existed got one each by migration
(`townhall.store.organisation_migration`). Meetings stay owned by their host; the host's
organisation is the meeting's, which is what a partner's key is checked against. Webhook
subscriptions (issue 19, phase 2) attach to the organisation the same way keys do.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

# How every API key starts (`thk_<key id>_<secret>`, townhall.auth.api_keys): secret scanners,
# log redaction and the edge's per-key rate rule (infra/stacks/edge.py) recognise it.
API_KEY_PREFIX = "thk_"

OrgRole = Literal["owner", "admin", "member"]
ORG_ROLES: tuple[OrgRole, ...] = ("owner", "admin", "member")
# Who may manage the organisation's keys and members.
MANAGERS: frozenset[str] = frozenset({"owner", "admin"})

# What a key may do. A person signed in holds every scope their role allows (see
# `townhall.auth.principals`); a key holds the scopes it was created with, no more.
SCOPES: dict[str, str] = {
    "meetings:read": "read the organisation's meetings and their registrants",
    "meetings:write": "create, edit and delete meetings, make join links, end live sessions",
    "sessions:read": "read sessions and their summaries: attendance, chat, polls, Q&A",
    "recordings:read": "read recordings (none exist yet: the list is empty)",
    "webhooks:read": "read webhook subscriptions and their delivery logs",
    "webhooks:write": "manage webhook subscriptions, rotate their secrets, replay deliveries",
}
Scope = str


def solo_org_id(user_id: str) -> str:
    """The organisation an account founds alone: derived from the account, so founding it is
    the same write however often it is repeated (sign-up, migration, a retry of either)."""
    return "o_" + hashlib.sha256(f"townhall-org:{user_id}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Organisation:
    org_id: str
    name: str
    created_at: int
    created_by: str


@dataclass(frozen=True)
class Membership:
    user_id: str
    org_id: str
    role: OrgRole
    email: str
    name: str
    joined_at: int

    @property
    def manages(self) -> bool:
        return self.role in MANAGERS


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    org_id: str
    name: str
    scopes: tuple[Scope, ...]
    # SHA-256 of the secret part (hex); the secret itself is shown once and never stored.
    secret_hash: str
    created_at: int
    created_by: str
    # Requests per second the key may make (townhall.auth.api_keys, the rate window).
    rate_per_second: int
    revoked_at: int = 0
    last_used_at: int = 0

    @property
    def revoked(self) -> bool:
        return self.revoked_at > 0
