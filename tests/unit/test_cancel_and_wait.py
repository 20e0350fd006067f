"""cancel_and_wait: shutdown's way to end background loops. A loop that loses its cancel (a
library turned the CancelledError into its own error, and the loop caught that) is cancelled
again instead of being awaited forever; one that never ends is reported, not waited for."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from botsys.waiting import CANCEL_TRIES, cancel_and_wait


async def swallows(times: int) -> None:
    """A loop whose first ``times`` cancels are swallowed (as a retrying client would)."""
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if times == 0:
                raise
            times -= 1


async def test_a_loop_that_lost_its_cancel_is_cancelled_again(caplog):
    caplog.set_level(logging.WARNING, logger="botsys.shutdown")
    task = asyncio.create_task(swallows(1), name="lossy")
    await asyncio.sleep(0)
    left = await cancel_and_wait([task], patience_s=0.05)
    assert not left and task.cancelled()
    [warning] = caplog.records
    assert "lossy" in warning.getMessage() and "cancelling again" in warning.getMessage()


async def test_a_well_behaved_task_ends_at_once_and_quietly(caplog):
    caplog.set_level(logging.WARNING, logger="botsys.shutdown")
    task = asyncio.create_task(swallows(0), name="fine")
    await asyncio.sleep(0)
    t0 = asyncio.get_running_loop().time()
    assert await cancel_and_wait([task], patience_s=5) == set()
    assert asyncio.get_running_loop().time() - t0 < 1 and not caplog.records


async def test_a_task_that_never_ends_is_reported_not_waited_for(caplog):
    caplog.set_level(logging.WARNING, logger="botsys.shutdown")
    released = asyncio.Event()

    async def stubborn() -> None:
        while not released.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await released.wait()

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    left = await cancel_and_wait([task], patience_s=0.02)
    assert left == {task} and not task.done()
    assert "ignored" in caplog.records[-1].getMessage() and caplog.records[-1].levelname == "ERROR"
    assert len(caplog.records) == CANCEL_TRIES + 1  # a warning per try, then the error
    released.set()
    await task


async def test_an_error_a_task_ended_with_is_logged_not_raised(caplog):
    async def broken() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            raise RuntimeError("boom on the way out")

    caplog.set_level(logging.ERROR, logger="botsys.shutdown")
    task = asyncio.create_task(broken(), name="broken")
    await asyncio.sleep(0)
    assert await cancel_and_wait([task], patience_s=1) == set()
    [record] = caplog.records
    assert "broken" in record.getMessage() and "boom" in str(record.exc_info[1])
