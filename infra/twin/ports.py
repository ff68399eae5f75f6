"""Listening ports for the twin's servers, stable across restarts within one process.

Lambda code caches what it builds from its environment for the life of its execution
environment (a boto3 client for the DynamoDB endpoint, the management API's URL), and the
twin runs that code in its own process. When a test session (or a tool) stops one twin and
starts another, those caches still hold the first twin's addresses. So a server asked for
"any free port" first tries the port the same server had last time in this process; the
restarted twin then has the same URLs, as a redeployed stack keeps its URLs. If that port is
taken, any free port is used.
"""

from __future__ import annotations

import socket

_last_port: dict[str, int] = {}


def listen(role: str, host: str, port: int = 0) -> socket.socket:
    """A listening TCP socket for `role` ("twin", "dynamodb"); port 0 means any free port."""
    sock: socket.socket | None = None
    if port == 0 and role in _last_port:
        try:
            sock = socket.create_server((host, _last_port[role]))
        except OSError:
            sock = None
    if sock is None:
        sock = socket.create_server((host, port))
    _last_port[role] = int(sock.getsockname()[1])
    return sock


def reserve(role: str, host: str) -> int:
    """A port for a server that binds by itself (moto's): free when this returns.

    The window between closing the probe and the server binding is tiny on a test machine.
    """
    with listen(role, host) as probe:
        return int(probe.getsockname()[1])
