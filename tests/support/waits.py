"""Waiting for what the code under test does, without polling: wrap the async method it calls
when something changes (a delivery store's ``finish_attempt``, a ring's ``reload``) and check
the condition again after each call."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable, Iterator


@contextlib.contextmanager
def signalled(obj, method: str) -> Iterator[asyncio.Event]:
    """An event set after each call of ``obj``'s async ``method`` (wrapped on the instance
    meanwhile, so the code under test calls the wrapper)."""
    real, called = getattr(obj, method), asyncio.Event()

    async def call_and_tell(*args, **kwargs):
        try:
            return await real(*args, **kwargs)
        finally:
            called.set()

    setattr(obj, method, call_and_tell)
    try:
        yield called
    finally:
        setattr(obj, method, real)


async def until(
    predicate: Callable[[], bool | Awaitable[bool]], changed: asyncio.Event, timeout: float
) -> None:
    """Until ``predicate()`` (plain or async) holds, checked again each time ``changed`` is
    set. Cleared before each check, so a change during an async check is not missed."""
    async with asyncio.timeout(timeout):
        while True:
            changed.clear()
            holds = predicate()
            if inspect.isawaitable(holds):
                holds = await holds
            if holds:
                return
            await changed.wait()


async def until_published(redis, channel: str, predicate, timeout: float) -> None:
    """Until ``predicate()`` (async) holds: checked once Redis confirmed our subscription to
    ``channel``, and again after each message on it."""
    pubsub = redis.pubsub()
    try:
        async with asyncio.timeout(timeout):
            await pubsub.subscribe(channel)
            async for message in pubsub.listen():
                if message["type"] in ("subscribe", "message") and await predicate():
                    return
    finally:
        await pubsub.aclose()


async def run_dispatcher_until(dispatcher, predicate, timeout: float = 30.0) -> None:
    """Run a webhook ``dispatcher`` until ``predicate()`` holds, checked again after each
    attempt its store records; then stop it."""
    with signalled(dispatcher._store, "finish_attempt") as recorded:
        task = asyncio.create_task(dispatcher.run())
        try:
            await until(predicate, recorded, timeout)
        finally:
            await dispatcher.stop(grace_s=1)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
