"""What a verified token says. Kept apart from the signing code so that handlers which only
read claims (from API Gateway's authorizer context) never import the JWT and crypto stack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from townhall.errors import Unauthenticated
from townhall.model.participant import ROLES, Role
from townhall.model.session import SessionKey


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    email: str
    name: str
    expires_at: int


@dataclass(frozen=True)
class JoinClaims:
    meeting_id: str
    session_id: str
    participant_id: str
    role: Role
    name: str
    # Set when the participant joined signed in: a host who reconnects is still the host.
    user_id: str | None
    expires_at: int

    @property
    def session(self) -> SessionKey:
        return SessionKey(self.meeting_id, self.session_id)

    def as_authorizer_context(self) -> dict[str, str]:
        """Flat string values: API Gateway's authorizer context takes no nested objects."""
        return {
            "meetingId": self.meeting_id,
            "sessionId": self.session_id,
            "participantId": self.participant_id,
            "role": self.role,
            "name": self.name,
            "userId": self.user_id or "",
        }

    @classmethod
    def from_authorizer_context(cls, context: dict[str, Any]) -> JoinClaims:
        role = str(context["role"])
        if role not in ROLES:
            raise Unauthenticated("unknown role in authorizer context")
        return cls(
            meeting_id=str(context["meetingId"]),
            session_id=str(context["sessionId"]),
            participant_id=str(context["participantId"]),
            role=role,
            name=str(context["name"]),
            user_id=str(context.get("userId") or "") or None,
            expires_at=0,
        )
