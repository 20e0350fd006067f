"""Compile each bot once per content hash (java), then run the cached build.

Layout: ``<cache_dir>/<type>/<key>/`` where key = sha256 of the compile template, the bot name
and the source bytes (and the JDK's version when the templates name ``{java}``/``{javac}``):
editing a bot, the compiler flags or the JDK compiles anew; an unchanged bot is
never compiled twice, even across restarts and replicas on one machine (the folder is renamed
into place atomically, so a reader sees a complete build or none). A type whose command names
``{classpath}`` also gets the build packed as ``bot.jar``, and a ``{java}`` type its class
archive beside it (class_archive.py).
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
from botsys.runners.class_archive import (
    JAR,
    TRAINER,
    ClassArchives,
    archives,
    pack_jar,
    packs_jar,
)
from botsys.runners.jdk import Jdk
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


@dataclass(frozen=True)
class Build:
    """A compiled bot: what ``{build}`` and ``{classpath}`` stand for, and the JVM options
    that load its class archive (inserted after ``{java}``; empty without one)."""

    folder: str = ""
    classpath: str = ""
    java_flags: tuple[str, ...] = ()


class CompileCache:
    def __init__(self, cache_dir: Path, compile_fn: CompileFn, jdk: Jdk | None = None) -> None:
        self._root = cache_dir
        self._compile_fn = compile_fn
        self._jdk = jdk or Jdk("java", "javac", "")
        self._locks: dict[str, asyncio.Lock] = {}
        self._failed: dict[str, str] = {}
        self.compiles = 0  # compiler runs started by this cache (tests and metrics read it)
        self.archives = ClassArchives(cache_dir, self._jdk, compile_fn)

    async def build(self, bt: BotTypeSettings, ref: BotRef, timeout_s: float) -> Build:
        """``ref`` compiled (and archived), compiling it first if needed."""
        folder = await self.build_dir(bt, ref, timeout_s)
        if not packs_jar(bt):
            return Build(str(folder), str(folder))
        jar = str(folder / JAR)
        flags: tuple[str, ...] = ()
        if archives(bt, self._jdk):
            # the bot's own command, with the trainer as main class: the same JVM flags
            values = self._values(ref, str(folder), folder, bot=TRAINER, classpath=jar)
            trainer_argv = render(bt.command, values)
            flags = self.archives.flags(bt, folder, trainer_argv)
        return Build(str(folder), jar, flags)

    def _key(self, bt: BotTypeSettings, ref: BotRef) -> str:
        template = list(bt.compile)
        if uses_jdk(bt):
            template += [self._jdk.javac, self._jdk.version]
        if packs_jar(bt):
            template.append(JAR)
        if archives(bt, self._jdk):
            # the trainer (by its source and JDK) is packed into the jar that training runs
            template.append(self.archives.trainer_dir().name)
        return cache_key(template, ref.name, ref.path.read_bytes())

    def _values(
        self, ref: BotRef, build: str, workdir: Path, bot: str | None = None, classpath: str = ""
    ) -> dict[str, str]:
        return Sandbox.values(
            ref.path,
            bot or ref.name,
            build,
            workdir,
            java=self._jdk.java,
            javac=self._jdk.javac,
            classpath=classpath or build,
        )

    async def build_dir(self, bt: BotTypeSettings, ref: BotRef, timeout_s: float) -> Path:
        """The folder holding ``ref`` compiled; compiles it first if needed."""
        key = self._key(bt, ref)
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
            argv = render(bt.compile, self._values(ref, str(tmp), tmp))
            started = time.monotonic()
            self.compiles += 1
            run = await self._compile_fn(bt, argv, tmp, timeout_s)
            if run.timed_out:
                raise CompileError(f"compiling {ref.name} timed out", timed_out=True)
            if run.returncode != 0:
                message = f"compile failed (exit code {run.returncode}):\n{run.output}".strip()
                self._remember_failure(key, message)
                raise CompileError(message)
            if packs_jar(bt):
                trainer = None
                if archives(bt, self._jdk):
                    trainer = await self.archives.trainer_class(bt, timeout_s)
                pack_jar(tmp, trainer)
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


def uses_jdk(bt: BotTypeSettings) -> bool:
    """Do the type's templates run the selected JDK (so its version keys the build)?"""
    return any(p in ("{java}", "{javac}") for p in (*bt.compile[:1], *bt.command[:1]))


def _publish(tmp: Path, final: Path) -> None:
    """Rename the finished build into place; if another process won the race, keep theirs."""
    try:
        os.rename(tmp, final)
    except OSError:
        if not final.is_dir():
            raise
