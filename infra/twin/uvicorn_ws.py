"""uvicorn's WebSocket protocol, adjusted where API Gateway's behaviour is observable.

Three adjustments to uvicorn's `websockets-sansio` implementation:

- A socket that drops without a close frame is reported as 1006 (abnormal closure, RFC 6455
  7.1.5). Stock uvicorn reports 1005, the code for "a close frame without a status code",
  and the twin must tell the two apart (`lose_abrupt_disconnects`).
- A message over the size limit is closed with 1009 and the reason "Message too big", the
  same words the `$disconnect` event carries, instead of the websockets library's
  "frame with N bytes exceeds limit of M bytes".
- A handshake refused with an HTTP response (the ASGI denial-response extension) counts as a
  finished handshake, so uvicorn does not log "ASGI callable returned without completing
  handshake" for every rejected connection.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn._types import ASGISendEvent
from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.frames import CloseCode
from websockets.server import ServerProtocol

ABNORMAL_CLOSURE = 1006
MESSAGE_TOO_BIG_REASON = "Message too big"


class _GatewayServerProtocol(ServerProtocol):
    def fail(self, code: int, reason: str = "") -> None:
        if code == CloseCode.MESSAGE_TOO_BIG:
            reason = MESSAGE_TOO_BIG_REASON
        super().fail(code, reason)


class GatewayWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        if config.ws_per_message_deflate:
            raise ValueError("the twin's WebSocket API does not negotiate permessage-deflate")
        self.conn = _GatewayServerProtocol(
            max_size=config.ws_max_size, logger=logging.getLogger("uvicorn.error")
        )

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body"):
            self.handshake_complete = True

    def connection_lost(self, exc: Exception | None) -> None:
        # Only when the app has not been told of a close already: not after a close frame from
        # the peer, nor after the app (or a protocol error) sent one.
        dropped_without_close_frame = (
            self.handshake_complete
            and not self.disconnected
            and not self.close_sent
            and self.conn.close_rcvd is None
        )
        if dropped_without_close_frame:
            self.queue.put_nowait(
                {"type": "websocket.disconnect", "code": ABNORMAL_CLOSURE, "reason": ""}
            )
        super().connection_lost(exc)
