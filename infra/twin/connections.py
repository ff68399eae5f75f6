"""The WebSocket API's live connections: what the management API (@connections) acts on.

A connection is registered once `$connect` accepted it and the handshake completed, and
forgotten the moment its socket closes, before `$disconnect` runs. That is when AWS starts
answering 410 Gone for it, so the twin answers the same from the same moment.

Everything here runs on the twin's event loop, so no locks are needed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from starlette.websockets import WebSocket

from infra.twin.fake_aws import now_ms
from infra.twin.ws_events import ConnectionFacts

log = logging.getLogger(__name__)


@dataclass
class LiveConnection:
    facts: ConnectionFacts
    websocket: WebSocket
    opened_monotonic: float = field(default_factory=time.monotonic)
    last_active_monotonic: float = field(default_factory=time.monotonic)
    last_active_ms: int = field(default_factory=now_ms)
    # Set once the twin starts closing the socket: from then on the connection is gone.
    closing: bool = False

    @property
    def connection_id(self) -> str:
        return self.facts.connection_id

    def touch(self) -> None:
        """Note traffic on the connection (it resets the idle timeout)."""
        self.last_active_monotonic = time.monotonic()
        self.last_active_ms = now_ms()

    async def send(self, data: str | bytes) -> bool:
        """Write one message to the socket; False when the socket is already gone.

        Returns once the frame is handed to the transport, so two sends in a row arrive in
        that order.
        """
        if self.closing:
            return False
        try:
            if isinstance(data, str):
                await self.websocket.send_text(data)
            else:
                await self.websocket.send_bytes(data)
        except Exception as exc:  # uvicorn raises ClientDisconnected, Starlette RuntimeError
            log.debug("send to %s failed: %r", self.connection_id, exc)
            return False
        self.touch()
        return True

    async def close(self, code: int, reason: str) -> None:
        """Start the closing handshake; the receive loop then sees the disconnect."""
        if self.closing:
            return
        self.closing = True
        try:
            await self.websocket.close(code=code, reason=reason)
        except Exception as exc:
            log.debug("close of %s failed: %r", self.connection_id, exc)


class ConnectionRegistry:
    def __init__(self) -> None:
        self._connections: dict[str, LiveConnection] = {}

    def add(self, connection: LiveConnection) -> None:
        self._connections[connection.connection_id] = connection

    def remove(self, connection_id: str) -> None:
        self._connections.pop(connection_id, None)

    def get(self, connection_id: str) -> LiveConnection | None:
        """The connection, or None when it is unknown, closed or closing (AWS: 410 Gone)."""
        connection = self._connections.get(connection_id)
        if connection is None or connection.closing:
            return None
        return connection

    def __len__(self) -> int:
        return len(self._connections)

    def all(self) -> list[LiveConnection]:
        return list(self._connections.values())
