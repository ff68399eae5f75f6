"""Who calls the partner API: a person signed in (an access token) or an API key, resolved to
the organisation they act for and the scopes they hold. Every partner route asks the
principal for the scope it needs, and every id it is given is checked against
`principal.org_id` (a stranger's meeting is "not found", never "forbidden": ids do not leak).
"""

from __future__ import annotations

from dataclasses import dataclass

from townhall.errors import Forbidden
from townhall.model.organisation import SCOPES, OrgRole

# A person holds the scopes of their role; a key holds the ones it was given.
ROLE_SCOPES: dict[OrgRole, frozenset[str]] = {
    "owner": frozenset(SCOPES),
    "admin": frozenset(SCOPES),
    "member": frozenset(s for s in SCOPES if s != "webhooks:write"),
}


@dataclass(frozen=True)
class Principal:
    org_id: str
    # The person, or for a key the person who created it (meetings a key creates are theirs).
    user_id: str
    scopes: frozenset[str]
    key_id: str | None = None
    # A person's role in the organisation; None for a key.
    role: OrgRole | None = None

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            who = "this API key" if self.key_id else "your role"
            raise Forbidden(f"{who} lacks the scope {scope}")

    def require_person_manager(self) -> None:
        """Keys and members are managed by a signed-in owner or admin, never with a key."""
        if self.key_id is not None:
            raise Forbidden("API keys cannot manage keys or members: sign in as an owner or admin")
        if self.role not in ("owner", "admin"):
            raise Forbidden("only an owner or admin of the organisation may do this")
