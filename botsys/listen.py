"""Listening sockets, bound before anything starts: a taken port is one clear line, not a
traceback after a "listening" log. ``serve`` and ``mock-webhook`` both use it."""

from __future__ import annotations

import errno
import socket


class BindError(OSError):
    """The address cannot be listened on; ``str(err)`` is the one line shown to the user."""


def bind_sockets(host: str, port: int) -> list[socket.socket]:
    """Bound (not yet listening) TCP sockets for every address ``host`` resolves to; all on
    the same port, even when ``port`` is 0 (the first one picks it)."""
    sockets: list[socket.socket] = []
    try:
        for family, sockaddr in _addresses(host, port):
            sockaddr = (sockaddr[0], port_of(sockets) if sockets else port, *sockaddr[2:])
            sockets.append(_bound(family, sockaddr, port))
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def port_of(sockets: list[socket.socket]) -> int:
    return sockets[0].getsockname()[1]


def _addresses(host: str, port: int) -> list[tuple[int, tuple]]:
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise BindError(f"cannot listen on {host}: {exc.strerror}") from None
    unique = {}
    for family, _type, _proto, _name, sockaddr in infos:
        unique.setdefault((family, sockaddr[0]), (family, sockaddr))
    return list(unique.values())


def _bound(family: int, sockaddr: tuple, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restarts within TIME_WAIT
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sockaddr)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise BindError(f"port {port} is in use (on {sockaddr[0]})") from None
        raise BindError(f"cannot listen on {sockaddr[0]}:{port}: {exc.strerror}") from None
    return sock
