"""Waiting for an asyncio.Event with a timeout, and ending tasks, in the loops shutdown stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

log = logging.getLogger("botsys.shutdown")

CANCEL_PATIENCE_S = 1.0  # a cancelled loop that still runs after this lost the cancel
CANCEL_TRIES = 5


async def wait_event(event: asyncio.Event, timeout_s: float) -> bool:
    """True if ``event`` was set within ``timeout_s``. asyncio.timeout, not wait_for: on
    Python 3.11 wait_for swallows a cancel that arrives as the event fires (gh-86296), and the
    cancelled loop would carry on."""
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task], patience_s: float = CANCEL_PATIENCE_S
) -> set[asyncio.Task]:
    """Cancel ``tasks`` and wait for them to end. A loop can lose its cancel (Python 3.11's
    wait_for returns a result instead of raising a cancel that lands as its inner future
    completes: store/cancel_safe.py guards redis-py's sends, but not every library's), and a
    plain ``await task`` then waits forever (a replica that never exits). So a task still
    running after ``patience_s`` is cancelled again, up to CANCEL_TRIES times. Returns the
    tasks that never ended (logged); errors of those that did are logged, not raised:
    shutdown goes on."""
    tasks = set(tasks)
    ended = {t for t in tasks if t.done()}
    pending = tasks - ended
    for t in pending:
        t.cancel()
    for attempt in range(CANCEL_TRIES):
        if not pending:
            break
        done, pending = await asyncio.wait(pending, timeout=patience_s)
        ended |= done
        if pending:
            names = ", ".join(sorted(t.get_name() for t in pending))
            log.warning(
                "task(s) %s still running %.1fs after a cancel; cancelling again",
                names,
                patience_s * (attempt + 1),
            )
            for t in pending:
                t.cancel()
    if pending:
        log.error(
            "task(s) %s ignored %d cancels; left running",
            ", ".join(sorted(t.get_name() for t in pending)),
            CANCEL_TRIES,
        )
    for t in ended:
        if not t.cancelled() and t.exception() is not None:
            log.error("task %s ended with an error", t.get_name(), exc_info=t.exception())
    return pending
