"""Loads lua/*.lua once and calls them by name.

Calls made in the same event-loop tick are sent together in one pipeline of EVALSHAs (one
round trip instead of many: under load dozens of completions and enqueues coincide). A script
Redis does not know yet (first use, or after a restart without AOF) is retried alone through
redis-py's script object, which loads it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

LUA_DIR = Path(__file__).with_name("lua")
# Scripts that do not use lib.lua's type-prefix helpers.
STANDALONE = frozenset(
    {"ratelimit", "group_write", "endpoint_throttle", "endpoint_record", "endpoint_probe"}
)


def load_source(name: str) -> str:
    body = (LUA_DIR / f"{name}.lua").read_text()
    if name in STANDALONE:
        return body
    return (LUA_DIR / "lib.lua").read_text() + "\n" + body


class Scripts:
    """One registered script per Lua file, called as ``await scripts.run(name, keys, args)``."""

    def __init__(self, redis: Redis, batch: bool = True):
        self.redis = redis
        names = sorted(p.stem for p in LUA_DIR.glob("*.lua") if p.stem != "lib")
        self._scripts = {name: redis.register_script(load_source(name)) for name in names}
        self._batch = batch
        self._pending: list[tuple[str, list, list, asyncio.Future]] = []
        self.round_trips = 0  # pipelines + single calls sent (benchmarks read it)

    @property
    def names(self) -> list[str]:
        return list(self._scripts)

    async def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return await self.submit(name, keys, args)

    def submit(self, name: str, keys: list[str], args: list[Any]) -> asyncio.Future:
        """Queue a call now and return its future: a caller that does not wait for the reply
        still shares the pipeline of the calls made in the same tick."""
        if not self._batch:
            self.round_trips += 1
            return asyncio.ensure_future(self._scripts[name](keys=keys, args=args))
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._pending.append((name, keys, args, fut))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return fut

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        self.round_trips += 1
        asyncio.ensure_future(self._send(batch))

    async def _send(self, batch: list[tuple[str, list, list, asyncio.Future]]) -> None:
        if len(batch) == 1:
            name, keys, args, fut = batch[0]
            await self._settle(fut, self._scripts[name](keys=keys, args=args))
            return
        pipe = self.redis.pipeline(transaction=False)
        for name, keys, args, _ in batch:
            pipe.evalsha(self._scripts[name].sha, len(keys), *keys, *args)
        try:
            results = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # the connection failed: every caller gets the error
            for *_, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for (name, keys, args, fut), result in zip(batch, results, strict=True):
            if isinstance(result, NoScriptError):
                await self._settle(fut, self._scripts[name](keys=keys, args=args))
            elif fut.done():
                continue
            elif isinstance(result, Exception):
                fut.set_exception(result)
            else:
                fut.set_result(result)

    @staticmethod
    async def _settle(fut: asyncio.Future, call) -> None:
        try:
            result = await call
        except Exception as exc:
            if not fut.done():
                fut.set_exception(exc)
            return
        if not fut.done():
            fut.set_result(result)
