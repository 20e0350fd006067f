"""ProcessRunner: one attempt = one bot subprocess, supervised (implements ``types.Runner``)."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from botsys.config import BotTypeSettings, Settings
from botsys.runners.bot_docs import bot_start
from botsys.runners.cache_dir import default_cache_dir
from botsys.runners.class_archive import with_java_flags
from botsys.runners.compile_cache import (
    COMPILER_OUTPUT_BYTES,
    Build,
    CompileCache,
    CompileError,
    CompileRun,
)
from botsys.runners.output import OutputCollector
from botsys.runners.protocol import encode_envelope
from botsys.runners.registry import BotRef, BotRegistry, UnknownBot
from botsys.runners.sandbox import Sandbox, render
from botsys.runners.supervise import Exit, supervise
from botsys.runners.types import AttemptOutcome, AttemptSpec, EventSink
from botsys.runners.zygote import Zygotes, check_forkable, forkable
from botsys.states import JobState

log = logging.getLogger(__name__)


class ProcessRunner:
    """Runs bots as sandboxed subprocesses. Build one per server and share it."""

    def __init__(
        self,
        settings: Settings,
        registry: BotRegistry | None = None,
        *,
        sandbox: Sandbox | None = None,
    ) -> None:
        self._settings = settings
        self.registry = registry or BotRegistry(settings)
        self.sandbox = sandbox or Sandbox(settings)
        cache_dir = default_cache_dir(settings.runner.cache_dir)
        self.compile_cache = CompileCache(cache_dir, self._run_compiler, self.sandbox.jdk)
        for bt in settings.bot_types.values():
            check_forkable(bt)
        eager = [bt.name for bt in settings.bot_types.values() if bt.start == "fork"]
        self.zygotes = Zygotes(self.sandbox.fork_plan, eager)

    async def start(self) -> None:
        """Start the zygotes of fork-mode types (else the first attempt of each starts it)."""
        await self.zygotes.start()

    async def run(self, spec: AttemptSpec, sink: EventSink) -> AttemptOutcome:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + spec.timeout_s
        try:
            ref = self.registry.resolve(spec.bot_type, spec.bot)
        except UnknownBot as exc:
            return AttemptOutcome(JobState.FAILED, error=str(exc))
        bt = self._settings.bot_types[ref.bot_type]
        try:
            build = await self._build(bt, ref, spec.timeout_s)
        except CompileError as exc:
            return AttemptOutcome(
                JobState.TIMED_OUT if exc.timed_out else JobState.FAILED, error=str(exc)
            )
        try:
            envelope = encode_envelope(spec)
        except (TypeError, ValueError) as exc:
            return AttemptOutcome(JobState.FAILED, error=f"payload is not JSON: {exc}")
        remaining = max(0.0, deadline - loop.time())  # compiling counts against the timeout
        return await self._attempt(bt, ref, build, envelope, remaining, sink)

    async def aclose(self) -> None:
        """Server shutdown: stop background work (java class archive trainings, zygotes)."""
        await self.zygotes.stop()
        await self.compile_cache.archives.aclose()

    async def _build(self, bt: BotTypeSettings, ref: BotRef, timeout_s: float) -> Build:
        if not bt.compile:
            return Build()
        return await self.compile_cache.build(bt, ref, timeout_s)

    def command(self, bt: BotTypeSettings, ref: BotRef, build: Build, workdir: Path) -> list[str]:
        """The bot's argv (without the sandbox prefix)."""
        jdk = self.sandbox.jdk
        values = self.sandbox.values(
            ref.path,
            ref.name,
            build.folder,
            workdir,
            self.sandbox.python(bt.name),
            java=jdk.java,
            javac=jdk.javac,
            classpath=build.classpath,
        )
        return with_java_flags(render(bt.command, values), build.java_flags)

    async def _attempt(
        self,
        bt: BotTypeSettings,
        ref: BotRef,
        build: Build,
        envelope: bytes,
        timeout_s: float,
        sink: EventSink,
    ) -> AttemptOutcome:
        runner = self._settings.runner
        out = OutputCollector(
            sink, log_cap=runner.log_cap_kb * 1024, result_cap=runner.result_cap_kb * 1024
        )
        workdir = self.sandbox.make_workdir(bt.name)
        try:
            command = self.command(bt, ref, build, workdir)
            zygote = None
            try:
                if start_mode(bt, ref) == "fork":
                    # a type made at runtime shares its runtime's zygote (same sandbox)
                    zygote = await self.zygotes.get(bt.runtime or bt.name)
                    argv = command[1:]  # the script and its arguments, run by the fork
                else:
                    argv = self.sandbox.prefix(bt.name) + command
                exit_ = await supervise(
                    argv,
                    env=self.sandbox.env(bt.name, workdir),
                    cwd=workdir,
                    stdin=envelope,
                    output=out,
                    timeout_s=timeout_s,
                    grace_s=runner.kill_grace_s,
                    on_start=out.started,
                    zygote=zygote,
                )
            except OSError as exc:
                return AttemptOutcome(JobState.FAILED, error=f"could not start {command[0]}: {exc}")
            out.finish()
            return outcome(exit_, out, bt, timeout_s)
        finally:
            await self.sandbox.remove_workdir(workdir)

    async def _run_compiler(
        self, bt: BotTypeSettings, argv: list[str], cwd: Path, timeout_s: float
    ) -> CompileRun:
        """The compile step, in the same sandbox as the bots of that type."""
        bot_type = bt.name
        tail = _Tail(COMPILER_OUTPUT_BYTES)
        exit_ = await supervise(
            self.sandbox.compile_prefix(bot_type) + argv,
            env=self.sandbox.env(bot_type, cwd),
            cwd=cwd,
            stdin=b"",
            output=tail,
            timeout_s=timeout_s,
            grace_s=self._settings.runner.kill_grace_s,
        )
        return CompileRun(exit_.returncode, exit_.timed_out, tail.text())


def start_mode(bt: BotTypeSettings, ref: BotRef) -> str:
    """The type's ``start``, unless the bot's header says ``Start: spawn|fork`` (fork only
    where the type's command can fork: ``{python} {script}``)."""
    own = bot_start(ref.path)
    if own == "fork" and not forkable(bt):
        return "spawn"
    return own or bt.start


def outcome(
    exit_: Exit, out: OutputCollector, bt: BotTypeSettings, timeout_s: float
) -> AttemptOutcome:
    """The attempt's verdict from how the process ended and what it printed."""
    tail = out.stderr_tail()
    truncated = out.log_truncated
    if exit_.timed_out:
        how = "SIGTERM" if exit_.stopped_by == "SIGTERM" else "SIGKILL after the grace period"
        error = _with_tail(f"timed out after {timeout_s:g} s (stopped by {how})", tail)
        return AttemptOutcome(JobState.TIMED_OUT, None, error, exit_.returncode, truncated)
    if out.result_error:
        error = _with_tail(out.result_error, tail)
        return AttemptOutcome(JobState.FAILED, None, error, exit_.returncode, truncated)
    if exit_.returncode == 0:
        return AttemptOutcome(JobState.SUCCEEDED, out.result, None, 0, truncated)
    error = _with_tail(describe_exit(exit_.returncode, bt), tail)
    return AttemptOutcome(JobState.FAILED, None, error, exit_.returncode, truncated)


def describe_exit(returncode: int, bt: BotTypeSettings) -> str:
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    if -returncode == signal.SIGXCPU:
        return f"killed by {name}: CPU limit (cpu_s = {bt.cpu_s}) exceeded"
    if -returncode == signal.SIGXFSZ:
        return f"killed by {name}: file size limit (file_size_mb = {bt.file_size_mb}) exceeded"
    return f"killed by {name}"


def _with_tail(reason: str, tail: str) -> str:
    return f"{reason}\n{tail}" if tail else reason


class _Tail:
    """Keeps the last ``size`` bytes of stdout+stderr (the compiler's messages)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._buf = bytearray()

    def stdout(self, data: bytes) -> None:
        self._buf += data
        del self._buf[: -self._size]

    stderr = stdout

    def text(self) -> str:
        return self._buf.decode("utf-8", "replace").strip()
