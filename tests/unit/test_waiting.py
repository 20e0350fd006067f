"""wait_event: a timed wait on an Event that never loses a cancel (the loops shutdown stops)."""

from __future__ import annotations

import asyncio

import pytest

from botsys.waiting import wait_event


async def test_true_when_set_false_on_timeout():
    ev = asyncio.Event()
    assert not await wait_event(ev, 0.01)
    ev.set()
    assert await wait_event(ev, 10)


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
async def test_a_cancel_arriving_as_the_event_fires_is_not_lost(turns):
    """asyncio.wait_for on 3.11 returns the result instead (gh-86296): the cancelled
    dispatcher loop would go on claiming after shutdown."""
    ev = asyncio.Event()
    task = asyncio.create_task(wait_event(ev, 10))
    await asyncio.sleep(0)  # the task is waiting
    ev.set()
    for _ in range(turns):
        await asyncio.sleep(0)
    task.cancel()
    if task.done():  # it saw the event before the cancel: nothing to lose
        assert task.result() is True
        return
    with pytest.raises(asyncio.CancelledError):
        await task
