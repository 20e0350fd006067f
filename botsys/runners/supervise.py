"""Run one subprocess in its own process group and always clean up after it.

The one place that signals processes. The sequence, whatever happens:
  exit / timeout / cancel → (SIGTERM the group → grace → SIGKILL the group) → SIGKILL the group
  again for anything the bot left behind → reap → close the pipes.

We use ``loop.subprocess_exec`` with our own protocol rather than ``create_subprocess_exec``:
on Python 3.11 ``Process.wait()`` only returns once every pipe is closed, so a grandchild that
keeps stdout open would hang it (cpython gh-119710); ``process_exited`` fires when the process
itself exits. Output arrives as callbacks, so nothing is buffered here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast

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
) -> Exit:
    """Run ``argv`` to completion or until ``timeout_s``; raises OSError if it cannot start.

    On cancellation the group is stopped the same way as on timeout, then CancelledError is
    re-raised.
    """
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    transport, proto = await loop.subprocess_exec(
        lambda: _Pipes(loop, output),
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=dict(env),
        # Its own group (a new session: pgid = pid), so we can signal every process it starts.
        # Not process_group=0: uvloop, which `serve` installs, rejects that keyword.
        start_new_session=True,
    )
    pid = transport.get_pid()
    stopped_by = None
    try:
        _write_stdin(transport, stdin)
        if on_start is not None:
            on_start(pid)
        timed_out = not await _wait(proto.exited, timeout_s)
        if timed_out:
            stopped_by = await _stop(pid, proto.exited, grace_s)
    except asyncio.CancelledError:
        await _stop(pid, proto.exited, grace_s)
        raise
    finally:
        _killpg(pid, signal.SIGKILL)  # whatever the bot left running
        await _reap(transport, proto)
    returncode = transport.get_returncode()
    assert returncode is not None  # reaped above
    return Exit(returncode, timed_out, stopped_by, time.monotonic() - started)


class _Pipes(asyncio.SubprocessProtocol):
    def __init__(self, loop: asyncio.AbstractEventLoop, output: Output) -> None:
        self._output = output
        self._open = {1, 2}
        self._failed = False
        self.exited: asyncio.Future[None] = loop.create_future()
        self.drained: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        try:
            if fd == 1:
                self._output.stdout(data)
            else:
                self._output.stderr(data)
        except Exception:  # a bug in a sink must not stop us draining the pipes
            if not self._failed:
                self._failed = True
                log.exception("handling the output of a bot failed; later errors not shown")

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._open.discard(fd)
        if not self._open and not self.drained.done():
            self.drained.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


def _write_stdin(transport: asyncio.SubprocessTransport, data: bytes) -> None:
    """Queue the envelope and EOF; the transport writes as the bot reads.

    A bot that never reads just leaves it queued; when it exits the pipe breaks and the
    transport drops the rest (EPIPE is expected, not an error), so nothing can deadlock.
    """
    # cast: uvloop's pipe transport is not an asyncio.WriteTransport subclass, but is one
    pipe = cast(asyncio.WriteTransport, transport.get_pipe_transport(0))
    try:
        pipe.write(data)
    finally:
        pipe.close()  # EOF once the buffer is flushed


async def _wait(fut: Awaitable[None], timeout: float | None) -> bool:
    """True if ``fut`` finished within ``timeout``; never cancels it."""
    done, _ = await asyncio.wait([asyncio.ensure_future(fut)], timeout=timeout)
    return bool(done)


async def _stop(pid: int, exited: asyncio.Future[None], grace_s: float) -> str:
    _killpg(pid, signal.SIGTERM)
    if grace_s > 0 and await _wait(exited, grace_s):
        return "SIGTERM"
    _killpg(pid, signal.SIGKILL)
    return "SIGKILL"


async def _reap(transport: asyncio.SubprocessTransport, proto: _Pipes) -> None:
    try:
        # The child watcher reaps the process; SIGKILL was sent, so this is prompt.
        await asyncio.shield(proto.exited)
        await _wait(proto.drained, DRAIN_S)
    finally:
        transport.close()  # cuts pipes still held by an escaped process


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already empty
