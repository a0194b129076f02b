"""Free TCP ports on the loopback for the servers the tests start (web, Daphne, the sandbox, a private Redis or
PostgreSQL)."""

from __future__ import annotations

import socket
from contextlib import ExitStack


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free now. Every socket stays bound until all are chosen: asked one at a time,
    the system may hand out the same port twice, and two of a stack's servers then fight over it (Daphne's
    "Address already in use" while gunicorn answered its readiness check)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def free_port() -> int:
    return free_ports(1)[0]
