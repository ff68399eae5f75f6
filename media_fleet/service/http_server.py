"""uvicorn on a socket we bound, without uvicorn's own signal handling.

uvicorn stops at once on SIGTERM; a media node must drain first, so the node installs its own
handlers and stops the server itself when the drain is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

STARTUP_TIMEOUT_SECONDS = 30.0


class QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ServedApp:
    """An ASGI app served on a listening socket, on the running loop."""

    def __init__(self, app: Any, sock: socket.socket) -> None:
        self.sock = sock
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            app, lifespan="off", log_level="warning", access_log=False, loop="asyncio"
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
