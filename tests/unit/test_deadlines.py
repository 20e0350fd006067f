"""botsys.deadlines: asyncio.timeout semantics with one shared timer per window."""

from __future__ import annotations

import asyncio

import pytest

from botsys.deadlines import Deadlines


async def test_a_block_past_its_deadline_raises_timeout_late_by_at_most_the_window(
    monkeypatch,
):
    deadlines = Deadlines(0.2, granularity_s=0.05)
    loop = asyncio.get_running_loop()
    timers = []
    call_at = loop.call_at

    def recording_call_at(when, callback, *args, **kw):
        timers.append(when)
        return call_at(when, callback, *args, **kw)

    monkeypatch.setattr(loop, "call_at", recording_call_at)
    started = loop.time()
    with pytest.raises(TimeoutError, match="no answer within 0.2 s"):
        with deadlines.scope():
            await asyncio.Event().wait()  # never set
    elapsed = loop.time() - started
    # The timer is due at the end of the window the deadline falls in: exact, whatever the
    # load; when it fires late, that is the loop's delay, not the deadline's.
    [due] = timers
    assert 0.2 <= due - started <= 0.2 + 0.05
    assert elapsed >= 0.2, "never early"


async def test_a_block_that_ends_in_time_is_left_alone_when_its_timer_fires():
    deadlines = Deadlines(0.1, granularity_s=0.05)
    with deadlines.scope():
        await asyncio.sleep(0)
    await asyncio.sleep(0.2)  # the shared timer fired meanwhile: nothing to cancel
    assert asyncio.current_task().cancelling() == 0


async def test_blocks_started_in_one_window_share_one_timer():
    deadlines = Deadlines(10, granularity_s=1)
    loop = asyncio.get_running_loop()
    scheduled = []
    call_at = loop.call_at

    def counting_call_at(when, callback, *args, **kw):
        if callback == deadlines._expire:
            scheduled.append(when)
        return call_at(when, callback, *args, **kw)

    loop.call_at = counting_call_at
    try:

        async def block():
            with deadlines.scope():
                await asyncio.sleep(0.01)

        await asyncio.gather(*(block() for _ in range(100)))
    finally:
        del loop.call_at
    assert len(scheduled) <= 2  # 100 blocks; a second timer only if a window edge fell inside


async def test_a_cancellation_from_outside_passes_through_as_cancellation():
    deadlines = Deadlines(5)
    entered = asyncio.Event()

    async def block():
        with deadlines.scope():
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(block())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_outside_a_task_it_refuses():
    deadlines = Deadlines(1)
    loop = asyncio.get_running_loop()
    outcome = loop.create_future()

    def callback():  # a loop callback runs outside any task
        try:
            deadlines.scope()
        except RuntimeError as exc:
            outcome.set_result(str(exc))
        else:
            outcome.set_result("no error")

    loop.call_soon(callback)
    assert "inside a task" in await outcome
