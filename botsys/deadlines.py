"""One timeout for many concurrent operations, with shared timers.

``asyncio.timeout`` arms a loop timer per use and cancels it when the block ends; a cancelled
timer stays in the loop's heap until its deadline comes round, so thousands of webhook
deliveries per second with a 15 s timeout keep tens of thousands of dead timers in the heap.
Measured in ``bench/webhooks.py``, that was about 15 µs of CPU per delivery, the largest
single item of the dispatcher's own cost; on every API request (the 1 s store deadline) it
was ~4 % of the server's CPU. Here, blocks that start in the same ``granularity`` window
share one timer. A block is cut up to ``granularity`` late, never early.

Use it like ``asyncio.timeout``: ``with deadlines.scope(): ...`` raises ``TimeoutError`` when
the deadline passes. Other cancellations pass through unchanged. Used by the webhook sender
(attempt timeout) and the API (store deadline, rate-limit check).
"""

from __future__ import annotations

import asyncio
import math


class Deadlines:
    """Deadlines of ``timeout_s`` for the attempts of one event loop."""

    def __init__(self, timeout_s: float, granularity_s: float = 0.05) -> None:
        self.timeout_s = timeout_s
        self._granularity = min(granularity_s, timeout_s / 10)
        self._buckets: dict[int, set[asyncio.Task]] = {}  # window number -> tasks in scope
        self._expired: set[asyncio.Task] = set()  # cancelled by us, not yet seen leaving

    def scope(self) -> _Scope:
        """A ``with`` block that must finish within ``timeout_s`` (call inside a task)."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Deadlines.scope() must be used inside a task")
        loop = task.get_loop()
        bucket = math.ceil((loop.time() + self.timeout_s) / self._granularity)
        tasks = self._buckets.get(bucket)
        if tasks is None:
            tasks = self._buckets[bucket] = set()
            loop.call_at(bucket * self._granularity, self._expire, bucket)
        return _Scope(self, task, tasks)

    def _expire(self, bucket: int) -> None:
        # Every task still in the bucket is suspended inside its block (the block's exit
        # removes it), so the cancellation lands inside the block, where _Scope sees it.
        for task in self._buckets.pop(bucket, ()):
            self._expired.add(task)
            task.cancel()

    def _leave(self, task: asyncio.Task, tasks: set[asyncio.Task], exc_type) -> bool:
        """True if the block ended because its deadline passed."""
        tasks.discard(task)
        if task not in self._expired:
            return False
        self._expired.discard(task)
        task.uncancel()
        return exc_type is asyncio.CancelledError and task.cancelling() == 0


class _Scope:
    __slots__ = ("_owner", "_task", "_tasks")

    def __init__(self, owner: Deadlines, task: asyncio.Task, tasks: set[asyncio.Task]) -> None:
        self._owner, self._task, self._tasks = owner, task, tasks

    def __enter__(self) -> _Scope:
        self._tasks.add(self._task)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._owner._leave(self._task, self._tasks, exc_type):
            raise TimeoutError(f"no answer within {self._owner.timeout_s:g} s") from exc
