"""Waiting for an asyncio.Event with a timeout, in the loops that shutdown cancels."""

from __future__ import annotations

import asyncio


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
