"""Loads lua/*.lua once and calls them by name (EVALSHA; redis-py reloads on NOSCRIPT)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from redis.asyncio import Redis

LUA_DIR = Path(__file__).with_name("lua")
STANDALONE = frozenset({"ratelimit"})  # scripts that do not use lib.lua's type-prefix helpers


def load_source(name: str) -> str:
    body = (LUA_DIR / f"{name}.lua").read_text()
    if name in STANDALONE:
        return body
    return (LUA_DIR / "lib.lua").read_text() + "\n" + body


class Scripts:
    """One registered script object per Lua file, called as ``await scripts.run(name, keys, args)``."""

    def __init__(self, redis: Redis):
        names = sorted(p.stem for p in LUA_DIR.glob("*.lua") if p.stem != "lib")
        self._scripts = {name: redis.register_script(load_source(name)) for name in names}

    @property
    def names(self) -> list[str]:
        return list(self._scripts)

    async def run(self, name: str, keys: list[str], args: list[Any], client=None) -> Any:
        return await self._scripts[name](keys=keys, args=args, client=client)
