"""uvicorn on a socket we bound, without uvicorn's own signal handling.

uvicorn stops at once on SIGTERM; a media node must drain first, so the node installs its own
handlers and stops the server itself when the drain is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

STARTUP_TIMEOUT_SECONDS = 30.0
# Closing a TLS connection waits for the peer's close_notify (asyncio allows 30 s), which an
# idle keep-alive connection in a client's pool never sends: past this, such a connection is
# aborted so the node's stop is not held up by a caller's pool.
TLS_CLOSE_GRACE_SECONDS = 1.0


class QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def _wait_tasks_to_complete(self) -> None:
        deadline = time.monotonic() + TLS_CLOSE_GRACE_SECONDS
        while self.server_state.connections and not self.force_exit:
            if time.monotonic() > deadline:
                for connection in list(self.server_state.connections):
                    transport = getattr(connection, "transport", None)
                    # Closing already (idle, shut down): only the TLS goodbye is missing. A
                    # connection still answering a request is not closing and is left alone.
                    if transport is not None and transport.is_closing():
                        transport.abort()
            await asyncio.sleep(0.1)
        await super()._wait_tasks_to_complete()


class ServedApp:
    """An ASGI app served on a listening socket, on the running loop."""

    def __init__(
        self, app: Any, sock: socket.socket, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.sock = sock
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            loop="asyncio",
            # A context we built (the front's in-memory certificate), not files uvicorn reads.
            ssl_context_factory=(
                None if ssl_context is None else lambda _config, _default: ssl_context
            ),
        )
        self.server = QuietServer(config)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.server.serve(sockets=[self.sock]))
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not self.server.started:
            if self.task.done():
                self.task.result()  # raises what stopped it
                raise RuntimeError("the control API stopped while starting")
            if time.monotonic() > deadline:
                raise RuntimeError("the control API did not start in time")
            await asyncio.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True

    async def wait_stopped(self) -> None:
        if self.task is not None:
            await self.task
        self.sock.close()
