"""Make this process non-dumpable: other processes of the same user (bots run as the server's
user when it is not root) can then no longer read its /proc/<pid>/environ, mem or fd/*, nor
ptrace it, and it writes no core file. Standard library only (ctypes), so it costs nothing
to import; exec resets the flag, so the bots the server starts are not affected."""

from __future__ import annotations

import ctypes
import ctypes.util

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


def make_undumpable() -> bool:
    """True once the kernel has taken it (False where prctl is missing: not Linux)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 and is_dumpable(libc) is False
    except (OSError, AttributeError):
        return False


def is_dumpable(libc: ctypes.CDLL | None = None) -> bool | None:
    try:
        libc = libc or ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))
    except (OSError, AttributeError):
        return None
