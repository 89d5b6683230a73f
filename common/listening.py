"""Binding a listening socket, with a sentence a person can act on when the port is taken."""

from __future__ import annotations

import errno
import socket

BACKLOG = 2048


class CannotListen(Exception):
    """The address cannot be listened on; the message says why and which setting changes it."""


def listen(host: str, port: int, *, setting: str = "PORT") -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening, as uvicorn would bind it.

    ``setting`` names the environment variable that chose the port, for the error message.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, as getaddrinfo names it for uvicorn's own sockets: asyncio turns
    # Nagle's algorithm off (TCP_NODELAY) only on accepted sockets whose protocol says TCP.
    # With it on, a response written as headers then body waited for the client's delayed
    # acknowledgement, 40 ms or more on every request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise CannotListen(_explain(exc, host, port, setting)) from None
    return sock


def check_free(host: str, port: int, *, setting: str = "PORT") -> None:
    """Raise :class:`CannotListen` now if ``host:port`` could not be listened on."""
    listen(host, port, setting=setting).close()


def _explain(exc: OSError, host: str, port: int, setting: str) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is already in use: stop what listens there, "
            f"or set {setting} to a free port (e.g. {setting}={port + 1})"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"port {port} needs privileges this user lacks: set {setting} above 1023"
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return f"HOST={host} is not an address of this machine: set HOST to one (127.0.0.1)"
    return f"cannot listen on {host}:{port} ({exc.strerror or exc}): check HOST and {setting}"
