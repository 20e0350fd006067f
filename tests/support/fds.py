"""What a process holds open, by kind, read from /proc: a leak shows as one kind growing,
while a connection pool that grew under load shows as sockets to its server."""

from __future__ import annotations

import os
from collections import Counter

_LISTEN = "0A"


def _tcp_sockets(pid: int, peers: dict[int, str]) -> dict[str, str]:
    """socket inode → 'tcp listen', 'tcp→<peer name>' or 'tcp (other)', from the process's
    network namespace tables."""
    kinds = {}
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as fh:
                rows = fh.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            remote_port, state, inode = int(cols[2].rsplit(":", 1)[1], 16), cols[3], cols[9]
            if state == _LISTEN:
                kinds[inode] = "tcp listen"
            elif remote_port in peers:
                kinds[inode] = f"tcp→{peers[remote_port]}"
            else:
                kinds[inode] = "tcp (other)"
    return kinds


def open_fds(pid: int, peers: dict[int, str] | None = None) -> Counter[str]:
    """Open descriptors of ``pid`` by kind: 'pipe', 'tcp listen', 'tcp→<name>' for a socket
    whose remote port is a key of ``peers``, 'tcp (other)', 'socket' (unix and the rest),
    'anon_inode:[eventpoll]' and the like, or the file's path."""
    sockets = _tcp_sockets(pid, peers or {})
    kinds: Counter[str] = Counter()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed while we looked
            continue
        if target.startswith("socket:["):
            kinds[sockets.get(target[8:-1], "socket")] += 1
        elif target.startswith("pipe:["):
            kinds["pipe"] += 1
        else:
            kinds[target] += 1
    return kinds
