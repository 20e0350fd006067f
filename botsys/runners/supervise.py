"""Run one subprocess in its own process group and always clean up after it.

The one place that signals processes. The sequence, whatever happens:
  exit / timeout / cancel → (SIGTERM the group → grace → SIGKILL the group) → SIGKILL the group
  again for anything the bot left behind → reap → close the pipes.

We spawn with ``subprocess.Popen`` from the event-loop thread and watch the exit through a
pidfd, instead of ``loop.subprocess_exec``, because the loop's own machinery falls short here:
- asyncio 3.11: ``Process.wait()`` only returns once every pipe is closed, so a grandchild
  keeping stdout open hangs it (cpython gh-119710), and its default child watcher starts a
  thread per child;
- uvloop (which ``serve`` installs) ignores ``close_fds`` (bots inherited the server's
  inheritable descriptors) and rejects ``process_group``.
``Popen(close_fds=True, process_group=0)`` behaves the same under any loop. Output arrives as
protocol callbacks, so nothing is buffered here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from botsys.runners.zygote import Zygote

log = logging.getLogger(__name__)

# After the group is SIGKILLed its pipes close at once; only a process that escaped the group
# (setsid) can hold them open longer. We wait this long for the last output, then cut the pipes.
DRAIN_S = 1.0


class Output(Protocol):
    def stdout(self, data: bytes) -> None: ...

    def stderr(self, data: bytes) -> None: ...


@dataclass(frozen=True)
class Exit:
    returncode: int  # negative: killed by that signal
    timed_out: bool
    stopped_by: str | None  # "SIGTERM" / "SIGKILL" when we stopped it (timeout or cancel)
    elapsed_s: float


async def supervise(
    argv: list[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    stdin: bytes,
    output: Output,
    timeout_s: float,
    grace_s: float,
    on_start: Callable[[int], None] | None = None,
    zygote: Zygote | None = None,
) -> Exit:
    """Run ``argv`` to completion or until ``timeout_s``; raises OSError if it cannot start.
    With a ``zygote``, ``argv`` is the script and its arguments, forked from it (zygote.py).

    On cancellation the group is stopped the same way as on timeout, then CancelledError is
    re-raised.
    """
    started = time.monotonic()
    child = (
        _Child.spawn(argv, env, cwd)
        if zygote is None
        else await _Child.fork(zygote, argv, env, cwd)
    )
    stopped_by = None
    try:
        if on_start is not None:  # before connect: output may arrive while pipes connect
            on_start(child.pid)
        await child.connect(output, stdin)
        timed_out = not await _wait(child.exited, timeout_s)
        if timed_out:
            stopped_by = await _stop(child, grace_s)
    except asyncio.CancelledError:
        stopped_by = await _stop(child, grace_s)
        raise
    finally:
        _killpg(child.pid, signal.SIGKILL)  # whatever the bot left running
        await child.reap()
        if stopped_by == "SIGKILL":
            await _until_group_gone(child.pid)
    return Exit(child.exited.result(), timed_out, stopped_by, time.monotonic() - started)


class _Child:
    """One process (a spawned one, or a zygote's fork): its exit, its three pipes as loop
    transports, and how to let it go once reaped."""

    def __init__(
        self, pid: int, pipes: tuple, exited: asyncio.Future[int], release: Callable[[], None]
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self.pid = pid
        self._stdin, self._stdout, self._stderr = pipes
        self.exited = exited
        self._release = release
        self.drained: asyncio.Future[None] = self._loop.create_future()
        self._open_outputs = 2
        self._readers: list[asyncio.BaseTransport] = []
        self._writer: asyncio.WriteTransport | None = None
        self._handed: list[object] = []  # pipes a transport owns (and will close)
        self._connecting: asyncio.Future[None] | None = None

    @classmethod
    def spawn(cls, argv: list[str], env: Mapping[str, str], cwd: Path) -> _Child:
        popen = subprocess.Popen(  # forks from the loop thread: PDEATHSIG follows it
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=dict(env),
            close_fds=True,  # only 0, 1, 2 reach the bot
            process_group=0,  # its own group (pgid = pid): we signal every process it starts
            bufsize=0,
        )
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[int] = loop.create_future()
        _watch_exit(loop, popen, exited)
        pipes = (popen.stdin, popen.stdout, popen.stderr)
        return cls(popen.pid, pipes, exited, lambda: None)

    @classmethod
    async def fork(
        cls, zygote: Zygote, argv: list[str], env: Mapping[str, str], cwd: Path
    ) -> _Child:
        forked = await zygote.fork(argv, env, cwd)
        pipes = (forked.stdin, forked.stdout, forked.stderr)
        # the zygote keeps the group's leader a zombie (its pid reserved) until released
        return cls(forked.pid, pipes, forked.exited, lambda: zygote.release(forked.pid))

    async def connect(self, output: Output, stdin: bytes) -> None:
        # Shielded: a cancel in the middle (a fast bot's output can make the caller cancel
        # before we are done) must not leave a pipe that a transport already owns unrecorded,
        # or reap() would close its descriptor a second time. reap() waits for it instead.
        self._connecting = asyncio.ensure_future(self._connect(output, stdin))
        self._connecting.add_done_callback(lambda f: f.cancelled() or f.exception())
        await asyncio.shield(self._connecting)

    async def _connect(self, output: Output, stdin: bytes) -> None:
        loop = self._loop
        for pipe, feed in ((self._stdout, output.stdout), (self._stderr, output.stderr)):
            transport, _ = await loop.connect_read_pipe(lambda f=feed: _Reader(f, self), pipe)
            self._readers.append(transport)
            self._handed.append(pipe)
        writer, _ = await loop.connect_write_pipe(asyncio.Protocol, self._stdin)
        self._writer = writer  # type: ignore[assignment]
        self._handed.append(self._stdin)
        # Queue the envelope and EOF; the transport writes as the bot reads. A bot that never
        # reads leaves it queued until it exits; then EPIPE drops the rest. No deadlock.
        writer.write(stdin)  # type: ignore[attr-defined]
        writer.close()

    def output_closed(self) -> None:
        self._open_outputs -= 1
        if self._open_outputs == 0 and not self.drained.done():
            self.drained.set_result(None)

    async def reap(self) -> None:
        try:
            # The exit watcher reaps the process; SIGKILL was sent, so this is prompt.
            await asyncio.shield(self.exited)
            self._release()
            await _wait(self.drained, DRAIN_S)
        finally:
            if self._connecting is not None and not self._connecting.done():
                await asyncio.wait([self._connecting])
            for reader in self._readers:
                if not reader.is_closing():
                    reader.close()  # cuts a pipe still held by a process that left the group
            if self._writer is not None and self._writer.get_write_buffer_size():
                self._writer.abort()  # stdin nobody will read any more
            for pipe in (self._stdin, self._stdout, self._stderr):
                if pipe is not None and pipe not in self._handed:
                    pipe.close()  # never handed to a transport (connect failed)


class _Reader(asyncio.Protocol):
    def __init__(self, feed: Callable[[bytes], None], child: _Child) -> None:
        self._feed = feed
        self._child = child
        self._failed = False

    def data_received(self, data: bytes) -> None:
        try:
            self._feed(data)
        except Exception:  # a bug in output handling must not stop us draining the pipe
            if not self._failed:
                self._failed = True
                log.exception("handling the output of a bot failed; later errors not shown")

    def eof_received(self) -> bool:
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._child.output_closed()


def _watch_exit(
    loop: asyncio.AbstractEventLoop, popen: subprocess.Popen, exited: asyncio.Future[int]
) -> None:
    """Resolve ``exited`` with the return code once the process ends, and reap it."""

    def reaped(returncode: int) -> None:
        popen.returncode = returncode  # so Popen never waits for it again
        if not exited.done():
            exited.set_result(returncode)

    try:
        pidfd = os.pidfd_open(popen.pid)  # Linux ≥ 5.3: readable when the process exits
    except (AttributeError, OSError):
        _watch_exit_in_thread(loop, popen.pid, reaped)
        return

    def on_exit() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        reaped(_waitpid(popen.pid))

    loop.add_reader(pidfd, on_exit)


def _watch_exit_in_thread(
    loop: asyncio.AbstractEventLoop, pid: int, reaped: Callable[[int], None]
) -> None:
    def wait() -> None:
        returncode = _waitpid(pid)
        loop.call_soon_threadsafe(reaped, returncode)

    threading.Thread(target=wait, name=f"botsys-wait-{pid}", daemon=True).start()


def _waitpid(pid: int) -> int:
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:  # reaped by someone else (SIGCHLD ignored, a waitpid(-1) watcher)
        log.warning("bot process %d was reaped elsewhere; its exit code is lost", pid)
        return 255
    return os.waitstatus_to_exitcode(status)


async def _wait(fut: asyncio.Future, timeout: float | None) -> bool:
    """True if ``fut`` finished within ``timeout``; never cancels it."""
    done, _ = await asyncio.wait([fut], timeout=timeout)
    return bool(done)


async def _stop(child: _Child, grace_s: float) -> str:
    _killpg(child.pid, signal.SIGTERM)
    if grace_s > 0 and await _wait(child.exited, grace_s):
        return "SIGTERM"
    _killpg(child.pid, signal.SIGKILL)
    return "SIGKILL"


async def _until_group_gone(pgid: int, bound_s: float = 1.0) -> None:
    """After a SIGKILL of the group, the launcher can be reaped while the namespace's init is
    still killing the rest in its own exit (the kernel does that concurrently): wait, briefly,
    until no live process of the group is left, so a stopped attempt is gone when run()
    returns. The kernel offers no event for this; it is checked on the kill path only."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound_s
    while _group_alive(pgid) and loop.time() < deadline:
        await asyncio.sleep(0.002)


def _group_alive(pgid: int) -> bool:
    """A process of group ``pgid`` that is not a zombie (kill(-pgid, 0) also counts zombies)."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rpartition(b")")[2].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already empty
