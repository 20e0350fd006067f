"""Sends that cannot lose a cancel (Python 3.11).

redis-py bounds every send with ``asyncio.wait_for(send, socket_timeout)``. On Python 3.11
wait_for returns the send's result when a cancel lands as the send completes (gh-86296, fixed
in 3.12): the caller's task runs on as if it had never been cancelled. Seen here: a replica's
shutdown waiting forever on a background loop whose cancel landed on one of its Redis sends;
the same can let a request run past its deadline or an attempt past its stop. After a send,
a cancel that was requested and not delivered is delivered: the connection is closed first
(its reply is never read, so it must not go back to the pool as it is), then CancelledError.
"""

from __future__ import annotations

import asyncio
import sys

from redis.asyncio.connection import AbstractConnection

NEEDED = sys.version_info < (3, 12)


class CancelSafeSend:
    """Mixin for a redis.asyncio connection class (before it in the bases)."""

    async def send_packed_command(self, command, check_health: bool = True) -> None:
        task = asyncio.current_task()
        asked = task.cancelling() if task is not None else 0
        await super().send_packed_command(command, check_health)  # type: ignore[misc]
        if task is not None and task.cancelling() > asked:
            await self.disconnect(nowait=True)  # type: ignore[attr-defined]
            raise asyncio.CancelledError


def use_cancel_safe_sends(pool) -> None:
    """Make ``pool`` (a redis.asyncio ConnectionPool) create such connections where needed."""
    cls = pool.connection_class
    if NEEDED and issubclass(cls, AbstractConnection) and not issubclass(cls, CancelSafeSend):
        pool.connection_class = type(f"CancelSafe{cls.__name__}", (CancelSafeSend, cls), {})
