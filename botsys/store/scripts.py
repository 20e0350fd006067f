"""Loads lua/*.lua once and calls them by name, their keys and arguments by name too.

Each script declares, in its header, the fixed keys and the arguments it takes::

    -- KEYS: queue delayed active meta
    -- ARGV: prefix now want lease_ms pairs...

and is loaded behind a generated prologue: ``K`` (``K.queue = KEYS[1]``...), ``A`` (``A.now =
ARGV[2]``...; a last name ending in ``...`` takes the rest, from ``ARGV[REST]``), ``R`` its reply
codes (store/results.py), ``S`` the job and delivery states (states.py) and ``KEY`` the
suffixes of data-dependent keys (store/keys.py), then lib.lua. A caller passes ``keys`` (a
mapping, or an object such as ``TypeKeys`` whose attributes are the names) and ``args`` (a
mapping) by those names; a missing or unexpected name fails the call before anything is sent.

Calls made in the same event-loop tick are sent together in one pipeline of EVALSHAs (one
round trip instead of many: under load dozens of completions and enqueues coincide). A script
Redis does not know yet (first use, or after a restart without AOF) is retried alone through
redis-py's script object, which loads it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from ..states import DeliveryState, JobState
from .keys import DATA_KEYS
from .results import CODES

LUA_DIR = Path(__file__).with_name("lua")
# Scripts of no bot type: no lib.lua.
STANDALONE = frozenset(
    {
        "ratelimit",
        "group_write",
        "group_draw",
        "endpoint_throttle",
        "endpoint_record",
        "endpoint_probe",
    }
)


class ScriptCallError(TypeError):
    """A script called with a key or an argument it does not declare, or without one it does."""


@dataclass(frozen=True)
class Signature:
    """The keys and arguments a script declares, in order; ``rest``: its variadic last one."""

    name: str
    keys: tuple[str, ...]
    args: tuple[str, ...]
    rest: str = ""

    @classmethod
    def parse(cls, name: str, source: str) -> Signature:
        keys = _declared(source, "KEYS")
        args = _declared(source, "ARGV")
        if args and args[-1].endswith("..."):
            return cls(name, keys, args[:-1], args[-1][:-3])
        return cls(name, keys, args)

    def bind(self, keys: Any, args: Mapping[str, Any]) -> Bound:
        """The call with every key and some arguments given (the rest come per call): built
        once per (script, bot type) by a caller, it saves the naming work on every call."""
        if isinstance(keys, Mapping):
            if len(keys) != len(self.keys) or not all(n in keys for n in self.keys):
                self._mismatch("KEYS", self.keys, keys)
            key_list = [keys[n] for n in self.keys]
        else:
            key_list = [getattr(keys, n) for n in self.keys]
        extra = [n for n in args if n not in self.args]
        if extra:
            raise ScriptCallError(f"{self.name}.lua ARGV: unexpected {extra}")
        template = [args.get(n) for n in self.args]
        free = tuple((n, i) for i, n in enumerate(self.args) if n not in args)
        return Bound(self, key_list, template, free, any(n == "now" for n, _ in free))

    def _mismatch(self, what: str, declared: tuple[str, ...], given: Mapping) -> None:
        missing = [n for n in declared if n not in given]
        extra = [n for n in given if n not in declared]
        raise ScriptCallError(f"{self.name}.lua {what}: missing {missing}, unexpected {extra}")

    def prologue(self) -> str:
        keys = ", ".join(f"{n} = KEYS[{i}]" for i, n in enumerate(self.keys, 1))
        args = ", ".join(f"{n} = ARGV[{i}]" for i, n in enumerate(self.args, 1))
        lines = [f"local K = {{{keys}}}", f"local A = {{{args}}}", _UNDECLARED]
        if self.rest:
            lines.append(f"local REST = {len(self.args) + 1}")
        return "\n".join(lines + _constants(self.name)) + "\n"


@dataclass(frozen=True)
class Bound:
    """A script's keys and its arguments known in advance (see ``Signature.bind``)."""

    signature: Signature
    keys: list[str]
    template: list[Any]  # the arguments in declared order; the free ones are filled per call
    free: tuple[tuple[str, int], ...]  # (name, position) of the arguments given per call
    takes_now: bool = False  # ``now`` is one of them

    def args(self, given: Mapping[str, Any]) -> list[Any]:
        sig = self.signature
        out = self.template.copy()
        try:
            if len(given) == len(self.free) + bool(sig.rest):
                for name, i in self.free:
                    out[i] = given[name]
                if sig.rest:
                    out.extend(given[sig.rest])
                return out
        except KeyError:
            pass
        names = [n for n, _ in self.free] + ([sig.rest] if sig.rest else [])
        sig._mismatch("ARGV", tuple(names), given)


# Reading a name the header does not declare is an error, not a nil key or argument.
_UNDECLARED = (
    "local UNDECLARED = {__index = function(_, n) error('not declared in KEYS or ARGV: ' .. n) end}"
    "\nsetmetatable(K, UNDECLARED); setmetatable(A, UNDECLARED)"
)


def _declared(source: str, what: str) -> tuple[str, ...]:
    found = re.search(rf"^-- {what}:(.*)$", source, re.MULTILINE)
    return tuple(found.group(1).split()) if found else ()


def _lua_table(name: str, pairs: dict[str, Any]) -> str:
    body = ", ".join(
        f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in pairs.items()
    )
    return f"local {name} = {{{body}}}"


def _constants(name: str) -> list[str]:
    codes = CODES.get(name)
    return [
        _lua_table("R", {c.name.lower(): int(c) for c in codes} if codes else {}),
        _lua_table("S", {s.value: s.value for s in (*JobState, *DeliveryState)}),
        _lua_table("KEY", DATA_KEYS),
    ]


def load_source(name: str) -> tuple[str, Signature]:
    body = (LUA_DIR / f"{name}.lua").read_text()
    sig = Signature.parse(name, body)
    if name in STANDALONE:
        return sig.prologue() + body, sig
    return sig.prologue() + (LUA_DIR / "lib.lua").read_text() + "\n" + body, sig


class Scripts:
    """One registered script per Lua file, called as ``await scripts.run(name, keys, args)``."""

    def __init__(self, redis: Redis, batch: bool = True):
        self.redis = redis
        names = sorted(p.stem for p in LUA_DIR.glob("*.lua") if p.stem != "lib")
        loaded = {name: load_source(name) for name in names}
        self._scripts = {name: redis.register_script(src) for name, (src, _) in loaded.items()}
        self.signatures = {name: sig for name, (_, sig) in loaded.items()}
        self._batch = batch
        self._pending: list[tuple[str, list, list, asyncio.Future]] = []
        self.round_trips = 0  # pipelines + single calls sent (benchmarks read it)

    @property
    def names(self) -> list[str]:
        return list(self._scripts)

    async def run(self, name: str, keys: Any, args: Mapping[str, Any]) -> Any:
        """``keys``: a mapping or an object naming the declared keys; ``args``: a mapping of the
        declared arguments."""
        return await self.submit(name, keys, args)

    def submit(self, name: str, keys: Any, args: Mapping[str, Any]) -> asyncio.Future:
        """``run`` queued now, its future returned: a caller that awaits the reply later still
        shares the pipeline of the calls made in the same tick."""
        bound = self.signatures[name].bind(keys, {})
        return self._submit(name, bound.keys, bound.args(args))

    async def run_bound(self, bound: Bound, args: Mapping[str, Any]) -> Any:
        """Run a script bound in advance with the arguments it still needs."""
        return await self._submit(bound.signature.name, bound.keys, bound.args(args))

    def _submit(self, name: str, keys: list[str], args: list[Any]) -> asyncio.Future:
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
