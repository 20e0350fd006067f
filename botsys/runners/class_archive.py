"""A class archive per java bot, so its JVM starts from pre-parsed, pre-linked classes.

JDK 25+: an AOT cache (``-XX:AOTCacheOutput`` once, ``-XX:AOTCache`` after, JEP 483/514);
JDK 13–24: a dynamic AppCDS archive (``-XX:ArchiveClassesAtExit`` / ``-XX:SharedArchiveFile``).
It applies to a type whose command starts with ``{java}`` and names ``{classpath}`` (CDS only
archives classes from jars, so the compiled bot is packed into ``bot.jar``), unless the command
manages CDS itself (any ``-Xshare:``, ``-XX:SharedArchiveFile``, ``-XX:AOT...`` option).

Training is a dedicated dry run, not a bot's first job: ``botsys_aot_train`` (in the same jar,
so the class path matches) loads the bot's classes *without initialising them* (no static
initialiser, no ``main``: no bot code runs, so no side effects and no payload is needed), then
walks the JDK paths nearly every bot's start takes. Archiving a real job instead would make
that job slower, and would publish a file the bot's own (untrusted) process wrote. The dry run
runs in the compiler's sandbox (as the server: it writes the cache) with the bot's JVM flags,
since an archive only loads under the flags it was made with; a bot that defines a class named
like the trainer gets no archive, so its code can never run there.

The archive lives beside the build (``<build>/archive-<key>.aot``, key = the command template
and the JDK's version), is checked by loading it once with sharing forced on, and is published
with its sha256: a JVM given a truncated CDS archive can crash (JDK 17: SIGBUS), so a file that
no longer matches its hash is rebuilt before use. Anything that fails leaves the bot running
without an archive, never failing the job.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import hashlib
import logging
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from botsys.config import BotTypeSettings
from botsys.runners.jdk import Jdk

log = logging.getLogger(__name__)

TRAINER = "botsys_aot_train"
TRAINER_SOURCE = Path(__file__).with_name("java") / f"{TRAINER}.java"
JAR = "bot.jar"
TRAIN_TIMEOUT_S = 120.0
_NICE = shutil.which("nice")
NICE = [_NICE, "-n", "19"] if _NICE else []
# JVM warnings go to stdout by default, where they would break the NDJSON protocol (a stale
# archive is reported with a warning); send them to stderr, the bot's log, instead.
QUIET = ("-Xlog:disable", "-Xlog:all=warning:stderr")
_MANAGED = re.compile(r"-Xshare:|-XX:[+-]?(SharedArchiveFile|ArchiveClassesAtExit|AOT)")
_COLLECTOR = re.compile(r"-XX:\+Use\w+GC$")

# (bot type, argv, cwd, timeout_s) → (returncode, timed_out, output): the compile sandbox
RunFn = Callable[[BotTypeSettings, list[str], Path, float], Awaitable[object]]


class ArchiveError(Exception):
    """Training or checking the archive failed: the bot runs without one."""


@dataclass(frozen=True)
class Flavor:
    suffix: str
    dump: str  # the option that writes the archive at exit
    use: str  # the option that loads it
    force: str  # makes a JVM that cannot load it fail (the check after training)
    collector: tuple[str, ...] = ()  # trained and loaded with it, if the command names none


# Since JDK 20 a JVM maps the archive at a random address and relocates every pointer in it
# (10 MB AOT cache: -Xlog:startuptime "Genesis" 5.5 ms, 1.4 ms without; ~1 ms of a start
# through the runner); at its base address (JDK 17's default) it maps as is. A command's own
# -XX:ArchiveRelocationMode comes later and wins.
AT_BASE = ("-XX:+UnlockDiagnosticVMOptions", "-XX:ArchiveRelocationMode=0")
# With an AOT cache the one-thread collector starts 0.5-1.8 ms sooner than G1 (no GC threads
# to start). Not with JDK 17's CDS: its archived heap objects load under G1 only, and a serial
# JVM there starts ~5 ms slower.
AOT_CACHE = Flavor(
    ".aot", "-XX:AOTCacheOutput=", "-XX:AOTCache=", "-XX:AOTMode=on", ("-XX:+UseSerialGC",)
)
APP_CDS = Flavor(".jsa", "-XX:ArchiveClassesAtExit=", "-XX:SharedArchiveFile=", "-Xshare:on")


def flavor(jdk: Jdk) -> Flavor | None:
    if jdk.feature >= 25:  # one-step AOTCacheOutput is JDK 25 (JEP 514)
        return AOT_CACHE
    if jdk.feature >= 13:  # ArchiveClassesAtExit is JDK 13 (JEP 350)
        return APP_CDS
    return None


def archives(bt: BotTypeSettings, jdk: Jdk) -> bool:
    """Does this type get a class archive (see the module docstring)?"""
    return (
        bool(bt.compile)
        and bt.command[:1] == ["{java}"]
        and any("{classpath}" in part for part in bt.command)
        and not any(_MANAGED.match(part) for part in bt.command)
        and flavor(jdk) is not None
    )


def collector(fl: Flavor, command: list[str]) -> tuple[str, ...]:
    """The flavor's collector, unless the command chooses one (two would not start)."""
    return () if any(_COLLECTOR.match(part) for part in command) else fl.collector


def packs_jar(bt: BotTypeSettings) -> bool:
    return bool(bt.compile) and any("{classpath}" in part for part in bt.command)


def with_java_flags(argv: list[str], flags: tuple[str, ...]) -> list[str]:
    """JVM options go right after the java binary, before the template's own."""
    return [argv[0], *flags, *argv[1:]] if flags else argv


def pack_jar(build: Path, extra: Path | None = None) -> Path:
    """Everything javac wrote under ``build`` (and ``extra``, the trainer) as ``build/bot.jar``."""
    jar = build / JAR
    with zipfile.ZipFile(jar, "w", zipfile.ZIP_STORED) as zf:  # stored: nothing to inflate
        for path in sorted(build.rglob("*")):
            if path.is_file() and path != jar:
                zf.write(path, path.relative_to(build).as_posix())
        if extra is not None and not (build / extra.name).exists():  # see genuine_trainer()
            zf.write(extra, extra.name)
    os.chmod(jar, 0o644)
    return jar


def archive_name(bt: BotTypeSettings, jdk: Jdk) -> str:
    h = hashlib.sha256()
    for part in (*bt.command, jdk.java, jdk.version):
        h.update(part.encode() + b"\0")
    fl = flavor(jdk)
    return f"archive-{h.hexdigest()[:16]}{fl.suffix if fl else ''}"


class ClassArchives:
    """Builds, checks and remembers the archive of each build folder."""

    def __init__(self, root: Path, jdk: Jdk, run_fn: RunFn) -> None:
        self._root = root
        self._jdk = jdk
        self._run = run_fn
        self._flags: dict[Path, tuple[str, ...]] = {}  # settled this process; () = none usable
        self._pending: dict[Path, asyncio.Future[None]] = {}
        # Trainings are background work: one at a time per server, niced, so a burst of new
        # builds does not starve the jobs (and their heartbeats) of CPU.
        self._one_at_a_time = asyncio.Semaphore(1)
        self.built = 0  # trainings run by this process (tests read it)

    @functools.cached_property
    def _trainer_key(self) -> str:
        h = hashlib.sha256(f"{self._jdk.javac}\0{self._jdk.version}\0".encode())
        try:
            h.update(TRAINER_SOURCE.read_bytes())
        except OSError:  # not installed: compiling it fails and the bots run without archives
            pass
        return h.hexdigest()[:16]

    def trainer_dir(self) -> Path:
        """Where this JDK's compiled trainer lives (its name keys the builds that pack it)."""
        return self._root / ".trainer" / self._trainer_key

    async def trainer_class(self, bt: BotTypeSettings, timeout_s: float) -> Path | None:
        """The trainer compiled by this JDK's javac (once per JDK), or None if it cannot be."""
        folder = self.trainer_dir()
        compiled = folder / f"{TRAINER}.class"
        if compiled.is_file():
            return compiled
        folder.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
        try:
            argv = [self._jdk.javac, "-d", str(tmp), str(TRAINER_SOURCE)]
            run = await self._run(bt, argv, tmp, timeout_s)
            if run.returncode != 0 or run.timed_out:
                log.warning("class archives off: compiling the trainer failed: %s", run.output)
                return None
            os.chmod(tmp, 0o755)
            try:
                os.rename(tmp, folder)
            except OSError:
                if not folder.is_dir():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return compiled

    def genuine_trainer(self, jar: Path) -> bool:
        """Is the jar's trainer ours? Training runs as the server, not as the bot's user: a
        bot that names one of its classes like the trainer must not get its code run there."""
        try:
            with zipfile.ZipFile(jar) as zf:
                names = [n for n in zf.namelist() if n == f"{TRAINER}.class"]
                ours = (self.trainer_dir() / f"{TRAINER}.class").read_bytes()
                return len(names) == 1 and zf.read(names[0]) == ours
        except (OSError, zipfile.BadZipFile, KeyError):
            return False

    def flags(self, bt: BotTypeSettings, build: Path, command: list[str]) -> tuple[str, ...]:
        """JVM options that load ``build``'s archive; () until one is known good in this
        process. The first sight of a build starts checking (or training) it in the
        background: a job never waits for its archive, nor spends its timeout on one.
        ``command`` is the type's command rendered for this build with the trainer as main."""
        path = build / archive_name(bt, self._jdk)
        known = self._flags.get(path)
        if known is None and path not in self._pending:
            task = asyncio.ensure_future(self._settle(bt, path, command))
            self._pending[path] = task
            task.add_done_callback(lambda _: self._pending.pop(path, None))
        return known or ()

    @property
    def pending(self) -> int:
        """Archives being checked or trained right now."""
        return len(self._pending)

    async def settled(self) -> None:
        """Wait for the archives being checked or trained (tests, benchmarks)."""
        while self._pending:
            await asyncio.gather(*self._pending.values(), return_exceptions=True)

    async def aclose(self) -> None:
        """Server shutdown: stop trainings in progress (their JVMs are killed, nothing is
        published; the next start trains again)."""
        for task in list(self._pending.values()):
            task.cancel()
        await asyncio.gather(*self._pending.values(), return_exceptions=True)

    async def _settle(self, bt: BotTypeSettings, path: Path, command: list[str]) -> None:
        fl = flavor(self._jdk)
        assert fl is not None
        gc = collector(fl, command)
        use = (*gc, fl.use + str(path), *AT_BASE, *QUIET)
        try:
            if not await asyncio.to_thread(intact, path):
                async with self._one_at_a_time:
                    lock = _try_lock(path)
                    if lock is None:
                        return  # another replica trains it: a later job looks again
                    try:
                        if not await asyncio.to_thread(intact, path):
                            timeout_s = min(bt.max_timeout_s, TRAIN_TIMEOUT_S)
                            await self._build(bt, fl, gc, path, command, timeout_s)
                    finally:
                        os.close(lock)
        except (ArchiveError, OSError) as exc:
            log.warning("java bot %s runs without a class archive: %s", path.parent.name, exc)
            use = ()
        self._flags[path] = use

    async def _build(
        self,
        bt: BotTypeSettings,
        fl: Flavor,
        gc: tuple[str, ...],
        path: Path,
        command: list[str],
        timeout_s: float,
    ) -> None:
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=path.parent))
        try:
            out = tmp / path.name
            base = command
            self.built += 1
            if not await asyncio.to_thread(self.genuine_trainer, path.parent / JAR):
                raise ArchiveError(
                    f"the jar's {TRAINER} is not botsys's (a bot class of that name?)"
                )
            await self._check(
                bt,
                with_java_flags(base, (*gc, fl.dump + str(out), *QUIET)),
                tmp,
                timeout_s,
                "training",
            )
            if not out.is_file():
                raise ArchiveError("training wrote no archive")
            check = (*gc, fl.force, fl.use + str(out), *AT_BASE, "-Dbotsys.aot.check=1", *QUIET)
            await self._check(bt, with_java_flags(base, check), tmp, timeout_s, "loading it")
            os.chmod(out, 0o644)  # bots run as another user
            digest = tmp / "digest"
            digest.write_text(_sha256(out))
            os.chmod(digest, 0o644)
            os.replace(digest, _digest_path(path))  # the digest first: see intact()
            os.replace(out, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    async def _check(
        self, bt: BotTypeSettings, argv: list[str], cwd: Path, timeout_s: float, what: str
    ) -> None:
        run = await self._run(bt, [*NICE, *argv], cwd, timeout_s)
        if run.timed_out:
            raise ArchiveError(f"{what} timed out")
        if run.returncode != 0:
            raise ArchiveError(f"{what} failed (exit code {run.returncode}): {run.output[-500:]}")


def intact(path: Path) -> bool:
    """The archive exists and matches the digest written with it (a reader that sees a new
    digest beside an old archive, mid-rebuild, just rebuilds too)."""
    try:
        return _digest_path(path).read_text().strip() == _sha256(path)
    except OSError:
        return False


def _try_lock(path: Path) -> int | None:
    """An exclusive lock on ``<archive>.lock`` (one trainer per machine), or None if another
    process holds it; released when the descriptor closes or the process dies."""
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
