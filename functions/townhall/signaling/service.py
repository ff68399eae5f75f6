"""Signaling: the in-meeting state machine behind the WebSocket API.

Each action (`townhall.signaling.actions`, named in `townhall.signaling.table`) reads the
state it needs (strongly consistent), takes the meeting's next event number, writes its whole
effect, with the events others must hear of, in one conditional transaction
(`townhall.signaling.transaction`); the outbox's consumer delivers those events after the
action has replied (`townhall.signaling.delivery`, docs/outbox.md). A write
that loses a race is re-read and retried; a replayed request id changes nothing.

This module knows nothing of Lambda or API Gateway: handlers call it with the verified claims
of the connection and a parsed request, and tests can call it directly. Its stores come in the
`ActionContext` (built by `townhall.runtime`, or by a test with stores of its own).
"""

from __future__ import annotations

from typing import Any

from townhall.auth.claims import JoinClaims
from townhall.errors import Conflict, Forbidden
from townhall.model.participant import Recipient
from townhall.model.session import SessionKey
from townhall.signaling.checks import may_enter_locked, running_session
from townhall.signaling.context import ActionContext, Caller
from townhall.signaling.delivery import close, connections_gone, mark_offline
from townhall.signaling.protocol import Request
from townhall.signaling.table import ACTIONS
from townhall.store.connections import Connection
from townhall.store.writes import StaleWrite


class SignalingService:
    def __init__(self, context: ActionContext) -> None:
        self._ctx = context

    def connect(self, claims: JoinClaims, connection_id: str, source_ip: str) -> None:
        """`$connect`: refuse connections to an ended session, and from removed people."""
        ctx = self._ctx
        session = running_session(ctx, claims.session)
        participant = ctx.participants.get(claims.session, claims.participant_id)
        if participant is not None and (
            participant.status == "denied"
            or (participant.status == "removed" and not participant.may_return)
        ):
            raise Forbidden(f"you were {participant.status} from this meeting")
        if session.locked and not may_enter_locked(participant, claims.role):
            raise Forbidden("the meeting is locked")
        ctx.connections.put(
            Connection(
                connection_id=connection_id,
                meeting_id=claims.meeting_id,
                participant_id=claims.participant_id,
                connected_at=int(ctx.clock()),
                source_ip=source_ip,
            )
        )

    def disconnect(self, caller: Caller, reason: str) -> None:
        """`$disconnect`: the connection is closed; mark its participant offline."""
        self._ctx.connections.delete(caller.connection_id)
        mark_offline(self._ctx, caller.session, caller.participant_id, caller.connection_id, reason)

    def connections_gone(self, key: SessionKey, gone: list[str], known: list[Recipient]) -> None:
        """The outbox found these connections gone (410): forget them, and mark their
        participants offline (which the others hear of)."""
        connections_gone(self._ctx, key, gone, known)

    def close_connection(self, connection_id: str) -> None:
        """Close a connection from the server's side (after the end of its session)."""
        close(self._ctx, connection_id)

    def handle(self, caller: Caller, request: Request) -> dict[str, Any]:
        """Run one action; return the reply's data or raise a DomainError."""
        action = ACTIONS[request.action]
        try:
            return action(self._ctx, caller, request)
        except StaleWrite as exc:
            # A condition kept failing under concurrent changes: the client may retry.
            raise Conflict("the meeting is busy; retry the request") from exc
