"""Compile each bot once per content hash (java), then run the cached build.

Layout: ``<cache_dir>/<type>/<key>/`` where key = sha256 of the compile template, the bot name
and the source bytes: editing a bot, or the compiler flags, compiles anew; an unchanged bot is
never compiled twice, even across restarts and replicas on one machine (the folder is renamed
into place atomically, so a reader sees a complete build or none).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from botsys.config import BotTypeSettings
from botsys.runners.cache_dir import UnsafeFolder, private_folder
from botsys.runners.registry import BotRef
from botsys.runners.sandbox import Sandbox, render

log = logging.getLogger(__name__)

COMPILER_OUTPUT_BYTES = 8192
_FAILED_MEMO = 256  # remember this many broken sources: a bad bot is not recompiled per job


class CompileError(Exception):
    """The compiler failed (``str`` is its message) or ran out of time."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


@dataclass(frozen=True)
class CompileRun:
    """What the compile function reports back: exit code, timeout flag, compiler output."""

    returncode: int
    timed_out: bool
    output: str


# (bot type, argv, cwd, timeout_s) → CompileRun; ProcessRunner supplies one that runs the compiler in the
# same sandbox as bots (scrubbed env, rlimits, process group, PDEATHSIG).
CompileFn = Callable[[BotTypeSettings, list[str], Path, float], Awaitable[CompileRun]]


class CompileCache:
    def __init__(self, cache_dir: Path, compile_fn: CompileFn) -> None:
        self._root = cache_dir
        self._compile_fn = compile_fn
        self._locks: dict[str, asyncio.Lock] = {}
        self._failed: dict[str, str] = {}
        self.compiles = 0  # compiler runs started by this cache (tests and metrics read it)

    async def build_dir(self, bt: BotTypeSettings, ref: BotRef, timeout_s: float) -> Path:
        """The folder holding ``ref`` compiled; compiles it first if needed."""
        key = cache_key(bt.compile, ref.name, ref.path.read_bytes())
        final = self._root / bt.name / key
        if final.is_dir():
            return final
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:  # concurrent callers for one key: the first compiles, others reuse
                if not final.is_dir():
                    if key in self._failed:
                        raise CompileError(self._failed[key])
                    await self._compile(bt, ref, final, key, timeout_s)
        finally:
            if not lock.locked():
                self._locks.pop(key, None)
        return final

    async def _compile(
        self, bt: BotTypeSettings, ref: BotRef, final: Path, key: str, timeout_s: float
    ) -> None:
        try:
            parent = private_folder(self._root / bt.name)
        except UnsafeFolder as exc:
            raise CompileError(str(exc)) from None
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=parent))
        try:
            os.chmod(tmp, 0o755)  # a bot running as another user must read the classes
            argv = _render(bt.compile, ref, tmp)
            started = time.monotonic()
            self.compiles += 1
            run = await self._compile_fn(bt, argv, tmp, timeout_s)
            if run.timed_out:
                raise CompileError(f"compiling {ref.name} timed out", timed_out=True)
            if run.returncode != 0:
                message = f"compile failed (exit code {run.returncode}):\n{run.output}".strip()
                self._remember_failure(key, message)
                raise CompileError(message)
            _publish(tmp, final)
            log.info("compiled %s/%s in %.2f s", bt.name, ref.name, time.monotonic() - started)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def _remember_failure(self, key: str, message: str) -> None:
        if len(self._failed) >= _FAILED_MEMO:
            self._failed.pop(next(iter(self._failed)))
        self._failed[key] = message


def cache_key(template: list[str], bot: str, source: bytes) -> str:
    h = hashlib.sha256()
    for part in (*template, bot):
        h.update(part.encode() + b"\0")
    h.update(source)
    return h.hexdigest()[:32]


def _render(template: list[str], ref: BotRef, build: Path) -> list[str]:
    return render(template, Sandbox.values(ref.path, ref.name, str(build), build))


def _publish(tmp: Path, final: Path) -> None:
    """Rename the finished build into place; if another process won the race, keep theirs."""
    try:
        os.rename(tmp, final)
    except OSError:
        if not final.is_dir():
            raise
