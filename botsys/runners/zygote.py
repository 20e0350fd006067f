"""``start = "fork"``: the server's side of the zygotes (the process itself is zygote_main.py).

A fresh interpreter costs a Python bot 17-24 ms of CPU before its first line; a fork of one that
already started costs ~1.5 ms. So each fork-mode bot type gets a zygote per replica: a Python
started once (the type's interpreter and environment, the standard modules loaded), which never
runs bot code and forks one child per attempt, isolated as botsys-launch isolates a spawned bot.

Per attempt the server makes the three pipes itself and hands the bot's ends to the zygote over a
unix socket (SCM_RIGHTS); the zygote answers with the attempt's process group and, later, with
how it ended. supervise.py then treats the attempt exactly like a spawned one: the same group
signals on timeout and cancel, the same pipes, the same ``Exit``. If a zygote dies its attempts
die with it (they report SIGKILL) and it is started again; if the server dies, the zygote dies
(parent-death signal) and takes its attempts along.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botsys.config import BotTypeSettings, ConfigError

log = logging.getLogger(__name__)

MAIN = Path(__file__).with_name("zygote_main.py")
# Not `python zygote_main.py`: that would put botsys/runners first on sys.path, where types.py
# shadows the standard module. `-c` adds "" (the cwd) instead, which we drop (-P is 3.11+).
BOOT = "import sys; del sys.path[0]; f = sys.argv[1]; exec(compile(open(f).read(), f, 'exec'))"
START_TIMEOUT_S = 30.0  # start-up plus the preloads, on a loaded machine
STOP_TIMEOUT_S = 2.0
KILLED = -signal.SIGKILL  # how an attempt of a zygote that died ends (its leader got SIGKILL)
RECV_BYTES = 1 << 16
_started: weakref.WeakSet[Zygote] = weakref.WeakSet()


def kill_all_zygotes() -> None:
    """SIGKILL every zygote this process started (a test's teardown; a server stops its own)."""
    for zygote in list(_started):
        zygote.kill()


def forkable(bt: BotTypeSettings) -> bool:
    """Fork mode runs the script inside a forked Python: the command must be
    ``["{python}", "{script}", args...]``, with nothing to compile or exec."""
    return not bt.compile and bt.command[:2] == ["{python}", "{script}"]


def check_forkable(bt: BotTypeSettings) -> None:
    if bt.start == "fork" and not forkable(bt):
        raise ConfigError(
            f'bot_types.{bt.name}.start = "fork" needs command = ["{{python}}", "{{script}}", '
            f'...] and no compile step (got command = {bt.command!r}); use start = "spawn"'
        )


@dataclass
class Forked:
    """One attempt the zygote forked: its leader (pid = process group) and our pipe ends."""

    pid: int
    exited: asyncio.Future[int]
    stdin: Any  # binary file objects, unbuffered
    stdout: Any
    stderr: Any


class ZygoteGone(OSError):
    pass


class Zygote:
    """One zygote process: start it, fork attempts through it, stop it."""

    def __init__(
        self, name: str, python: str, plan: Mapping[str, Any], env: Mapping[str, str]
    ) -> None:
        self.name = name
        self._python = python
        self._plan = dict(plan)
        self._env = dict(env)
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen | None = None
        self._ready: asyncio.Future[dict] | None = None
        self._replies: dict[int, asyncio.Future[int]] = {}
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._next_id = 0
        self._buffered = b""
        self.gone: asyncio.Future[None] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def alive(self) -> bool:
        # no socket: closed or killed (a synchronous kill, with no loop to resolve ``gone``)
        return self._sock is not None and self.gone is not None and not self.gone.done()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        plan = {**self._plan, "sock": theirs.fileno(), "server": os.getpid()}
        try:
            # From the loop thread (the parent-death signal follows the forking thread), in a
            # group of its own (a terminal's ^C is the server's to handle, not the zygote's).
            self._proc = subprocess.Popen(
                [self._python, "-c", BOOT, str(MAIN), json.dumps(plan)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=self._env,
                cwd="/",
                pass_fds=(theirs.fileno(),),
                process_group=0,
            )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        _started.add(self)
        ours.setblocking(False)
        self._sock = ours
        self._ready = loop.create_future()
        self.gone = loop.create_future()
        loop.add_reader(ours.fileno(), self._on_readable)
        try:
            ready = await asyncio.wait_for(asyncio.shield(self._ready), START_TIMEOUT_S)
        except (TimeoutError, ZygoteGone) as exc:
            self.kill()
            raise ZygoteGone(
                f"the {self.name} zygote did not start: {exc or 'timed out'}"
            ) from None
        if ready.get("missing"):
            log.warning(
                "bot_types.%s.preload: could not import %s",
                self.name,
                "; ".join(ready["missing"]),
            )
        log.info("zygote for %s bots started (pid %d)", self.name, self._proc.pid)

    async def fork(self, argv: list[str], env: Mapping[str, str], cwd: Path) -> Forked:
        """Fork one attempt running ``argv`` (script, args); raises OSError if it cannot."""
        if not self.alive or self._sock is None:
            raise ZygoteGone(f"the {self.name} zygote is not running")
        loop = asyncio.get_running_loop()
        self._next_id += 1
        ident = self._next_id
        # path0: sys.path[0] as `python script` sets it, computed here, not in the bot (its
        # copy-on-write pages: see zygote_main.py)
        path0 = os.path.dirname(os.path.abspath(os.path.join(cwd, argv[0])))
        request = {"id": ident, "argv": argv, "env": dict(env), "cwd": str(cwd), "path0": path0}
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        ours = [stdin_w, stdout_r, stderr_r]
        reply = self._replies[ident] = loop.create_future()
        try:
            await self._send(json.dumps(request).encode(), [stdin_r, stdout_w, stderr_w])
        except BaseException:
            self._replies.pop(ident, None)
            for fd in ours:
                os.close(fd)
            raise
        finally:
            for fd in (stdin_r, stdout_w, stderr_w):
                os.close(fd)
        try:
            pid = await asyncio.shield(reply)
        except asyncio.CancelledError:
            reply.add_done_callback(self._abandon)  # nobody will supervise it: end it
            for fd in ours:
                os.close(fd)
            raise
        except BaseException:
            for fd in ours:
                os.close(fd)
            raise
        return Forked(
            pid,
            self._exits[pid],
            open(stdin_w, "wb", buffering=0),  # noqa: SIM115 - a transport owns them
            open(stdout_r, "rb", buffering=0),  # noqa: SIM115
            open(stderr_r, "rb", buffering=0),  # noqa: SIM115
        )

    def release(self, pid: int) -> None:
        """The attempt was reaped by us: the zygote may now reap its leader (free its pid)."""
        self._exits.pop(pid, None)
        if self.alive:
            self._send_now(json.dumps({"release": pid}).encode())

    def kill(self) -> None:
        """Stop it now (SIGKILL), synchronously; its attempts die with it."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._closed()

    async def stop(self) -> None:
        """Close its socket (it kills what it still runs and exits), then reap it."""
        if self._proc is None:
            return
        self._closed()
        try:
            await asyncio.wait_for(asyncio.to_thread(self._proc.wait), STOP_TIMEOUT_S)
        except TimeoutError:
            self.kill()

    # ---- the socket

    async def _send(self, data: bytes, fds: list[int]) -> None:
        assert self._sock is not None
        while True:
            try:
                socket.send_fds(self._sock, [data], fds)
                return
            except BlockingIOError:
                await self._writable()

    def _send_now(self, data: bytes) -> None:
        try:
            assert self._sock is not None
            self._sock.send(data)
        except BlockingIOError:  # rare: the zygote is behind; send it when we can
            asyncio.get_running_loop().create_task(self._send(data, []))
        except OSError:
            pass  # it is gone; _on_readable finds out

    async def _writable(self) -> None:
        assert self._sock is not None
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        fd = self._sock.fileno()
        loop.add_writer(fd, lambda: ready.done() or ready.set_result(None))
        try:
            await ready
        finally:
            loop.remove_writer(fd)

    def _on_readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._closed()
                return
            self._on_message(json.loads(data))

    def _on_message(self, message: dict) -> None:
        if "exit" in message:
            exited = self._exits.get(message["exit"])
            if exited is not None and not exited.done():
                exited.set_result(message["status"])
        elif "id" in message:
            reply = self._replies.pop(message["id"], None)
            if "pid" in message:
                self._exits[message["pid"]] = asyncio.get_running_loop().create_future()
            if reply is None or reply.done():
                return
            if "pid" in message:
                reply.set_result(message["pid"])
            else:
                reply.set_exception(OSError(message.get("error", "the zygote could not fork")))
        elif "ready" in message and self._ready is not None and not self._ready.done():
            self._ready.set_result(message)

    def _abandon(self, reply: asyncio.Future[int]) -> None:
        if reply.cancelled() or reply.exception() is not None:
            return
        pid = reply.result()
        _killpg(pid, signal.SIGKILL)
        exited = self._exits.get(pid)
        if exited is not None:
            exited.add_done_callback(lambda _: self.release(pid))

    def _closed(self) -> None:
        """The zygote is gone or going: fail what waits on it."""
        if self._sock is not None:
            try:
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            except RuntimeError:
                pass  # no loop (a synchronous kill at the end of a test)
            self._sock.close()
            self._sock = None
        if self.gone is None or self.gone.get_loop().is_closed():
            return  # a test's teardown: nobody is waiting any more
        gone = ZygoteGone(f"the {self.name} zygote is gone")
        for future in (self._ready, *self._replies.values()):
            if future is not None and not future.done():
                future.set_exception(gone)
        for future in self._replies.values():
            future.exception()  # retrieved: nobody else may look
        self._replies.clear()
        for exited in self._exits.values():
            if not exited.done():
                exited.set_result(KILLED)  # its leaders died with it (parent-death signal)
        if self.gone is not None and not self.gone.done():
            self.gone.set_result(None)


class Zygotes:
    """The zygotes of a server, one per fork-mode type, started on demand and restarted."""

    def __init__(
        self, plan_for: Callable[[str], tuple[str, dict, dict[str, str]]], eager: list[str]
    ) -> None:
        self._plan_for = plan_for  # type -> (python, plan, env)
        self._eager = eager  # started with the server; others on a bot's first `Start: fork`
        self._running: dict[str, Zygote] = {}
        self._starting: dict[str, asyncio.Task[Zygote]] = {}
        self._closed = False

    def running(self, bot_type: str) -> Zygote | None:
        zygote = self._running.get(bot_type)
        return zygote if zygote is not None and zygote.alive else None

    async def get(self, bot_type: str) -> Zygote:
        zygote = self.running(bot_type)
        if zygote is not None:
            return zygote
        if self._closed:
            raise ZygoteGone("the server is stopping")
        task = self._starting.get(bot_type)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self._start(bot_type))
            self._starting[bot_type] = task
        return await asyncio.shield(task)

    async def start(self) -> None:
        """Start every zygote now (server start-up), so no attempt waits for one."""
        await asyncio.gather(*(self.get(name) for name in self._eager))

    async def stop(self) -> None:
        self._closed = True
        for task in self._starting.values():
            task.cancel()
        await asyncio.gather(*(z.stop() for z in self._running.values()))

    def kill(self) -> None:
        """Synchronously (tests' teardown, after their loop is gone)."""
        self._closed = True
        for zygote in self._running.values():
            zygote.kill()

    async def _start(self, bot_type: str) -> Zygote:
        python, plan, env = self._plan_for(bot_type)
        zygote = Zygote(bot_type, python, plan, env)
        await zygote.start()
        self._running[bot_type] = zygote
        assert zygote.gone is not None
        zygote.gone.add_done_callback(lambda _: self._on_gone(bot_type, zygote))
        return zygote

    def _on_gone(self, bot_type: str, zygote: Zygote) -> None:
        if self._closed or self._running.get(bot_type) is not zygote:
            return
        log.warning("the zygote for %s bots (pid %s) died; starting another", bot_type, zygote.pid)
        if zygote._proc is not None:
            zygote.kill()  # reap it
        task = asyncio.get_running_loop().create_task(self._restart(bot_type))
        self._starting[bot_type] = task

    async def _restart(self, bot_type: str) -> Zygote:
        try:
            return await self._start(bot_type)
        except Exception:
            log.exception("could not restart the zygote for %s bots", bot_type)
            raise


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
