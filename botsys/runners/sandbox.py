"""What a bot runs inside: the native wrapper, the scrubbed environment, the private folder.

The wrapper is ``botsys-launch <server pid> data=... -- <command>`` (``launch.c``, built by
``launcher.py``): it arms a parent-death signal, sets the rlimits and starts the bot as its
child, so nothing runs in the server between fork and exec (no ``preexec_fn``: the server has
threads); when the server dies it kills the bot's whole process group. Without a C
compiler, and for ``run_as`` types (the uid change needs setpriv), it is the util-linux chain
``setpriv --pdeathsig KILL [--reuid ...] -- prlimit --data=... -- <command>``: the limits,
and the bot's own death with the server, for one more exec (~1 ms per bot). A Python wrapper would cost ~5x a bot's start-up.

PDEATHSIG is tied to the *thread* that forked the child: supervise.py forks from the
event-loop thread, so a bot dies when that thread (in practice: the server process) dies.
With the launcher, what the bot started dies with it; with the chain, PDEATHSIG is set on the
bot's own process only, and its children are killed with the process group whenever the runner
is alive to do it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from botsys.config import BotTypeSettings, ConfigError, Settings
from botsys.runners.cache_dir import default_cache_dir
from botsys.runners.launcher import build_launcher

log = logging.getLogger(__name__)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # fullmatch
_MIB = 1024 * 1024
# The only variables a bot inherits from the server; everything else (REDIS_URL, API keys,
# webhook secrets, NODE_OPTIONS, LD_PRELOAD, ...) is dropped.
INHERITED_ENV = ("PATH", "LANG", "LC_ALL")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class Tools:
    setpriv: str | None
    prlimit: str | None
    launcher: str | None = None  # botsys-launch: both in one exec


@functools.cache
def find_tools(cache_dir: Path | None = None) -> Tools:
    """Locate and probe the wrappers once per process (util-linux ≥ 2.33 for --pdeathsig);
    with a cache folder, build the launcher there too."""
    return Tools(
        setpriv=_probe("setpriv", "--pdeathsig", "KILL", "--"),
        prlimit=_probe("prlimit", "--core=0", "--"),
        launcher=build_launcher(cache_dir) if cache_dir is not None else None,
    )


def _probe(name: str, *args: str) -> str | None:
    path = shutil.which(name)
    if path is None:
        return None
    true = shutil.which("true") or "/bin/true"
    try:
        ok = subprocess.run([path, *args, true], timeout=5, capture_output=True).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return path if ok else None


def rlimit_args(bt: BotTypeSettings) -> list[str]:
    """prlimit options for a bot type; a 0 setting means 'not limited'."""
    args = ["--core=0"]  # core dumps could leak payloads
    if bt.memory_mb:
        args.append(f"--{bt.memory_rlimit}={bt.memory_mb * _MIB}")
    if bt.cpu_s:
        # soft < hard: the CPU limit shows up as SIGXCPU, distinct from our SIGKILL
        args.append(f"--cpu={bt.cpu_s}:{bt.cpu_s + 1}")
    if bt.open_files:
        args.append(f"--nofile={bt.open_files}")
    if bt.file_size_mb:
        args.append(f"--fsize={bt.file_size_mb * _MIB}")
    if bt.processes:
        args.append(f"--nproc={bt.processes}")
    return args


def parse_env(bt: BotTypeSettings) -> dict[str, str]:
    """The type's ``env = ["NAME=value", ...]`` as a dict; a bad entry is a config error."""
    out: dict[str, str] = {}
    for item in bt.env:
        name, sep, value = item.partition("=")
        if not sep or not _ENV_NAME.fullmatch(name):
            raise ConfigError(f"bot_types.{bt.name}.env: {item!r} is not NAME=value")
        out[name] = value
    return out


def render(template: list[str], values: Mapping[str, str]) -> list[str]:
    """Fill ``{python}``-style placeholders; other braces are left alone (no str.format)."""
    argv = []
    for part in template:
        for key, value in values.items():
            part = part.replace("{" + key + "}", value)
        argv.append(part)
    return argv


@dataclass(frozen=True)
class _User:
    name: str
    uid: int
    gid: int


class Sandbox:
    """Per-type wrapper prefix and environment, computed once from the settings."""

    def __init__(self, settings: Settings, tools: Tools | None = None) -> None:
        self.tools = tools or find_tools(default_cache_dir(settings.runner.cache_dir))
        self._base_env = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
        self._base_env.setdefault("PATH", DEFAULT_PATH)
        self._base_env.setdefault("LANG", "C.UTF-8")
        self._users = {n: _user(bt) for n, bt in settings.bot_types.items() if bt.run_as}
        types = settings.bot_types.items()
        self._prefix = {n: self._build_prefix(bt, as_user=True) for n, bt in types}
        # The compiler writes the shared build cache, so it runs as the server, not run_as.
        self._compile_prefix = {n: self._build_prefix(bt, as_user=False) for n, bt in types}
        self._env = {n: parse_env(bt) for n, bt in settings.bot_types.items()}
        self._warn_missing_tools()
        for name, user in self._users.items():
            if any("{python}" in part for part in settings.bot_types[name].command):
                _warn_unreachable(Path(sys.executable), user, name)

    def prefix(self, bot_type: str) -> list[str]:
        return self._prefix[bot_type]

    def compile_prefix(self, bot_type: str) -> list[str]:
        return self._compile_prefix[bot_type]

    def env(self, bot_type: str, workdir: Path) -> dict[str, str]:
        env = dict(self._base_env, HOME=str(workdir), TMPDIR=str(workdir))
        env.update(self._env[bot_type])
        return env

    def make_workdir(self, bot_type: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=f"botsys-{bot_type}-"))
        user = self._users.get(bot_type)
        if user is not None:
            os.chown(path, user.uid, user.gid)
        return path

    async def remove_workdir(self, path: Path) -> None:
        try:
            path.rmdir()  # the common case: the bot left nothing behind; one syscall
        except FileNotFoundError:
            return
        except OSError:
            # A bot may leave many files: remove them off the event loop.
            await asyncio.to_thread(_force_rmtree, path)

    @staticmethod
    def values(script: Path, bot: str, build: str, workdir: Path) -> dict[str, str]:
        return {
            "python": sys.executable,  # the server's own interpreter (PATH's may be a slow shim)
            "script": str(script),
            "bot": bot,
            "build": build,
            "workdir": str(workdir),
        }

    def _build_prefix(self, bt: BotTypeSettings, as_user: bool) -> list[str]:
        user = self._users.get(bt.name) if as_user else None
        if self.tools.launcher and user is None:
            limits = [arg.removeprefix("--") for arg in rlimit_args(bt)]
            return [self.tools.launcher, str(os.getpid()), *limits, "--"]
        prefix: list[str] = []
        if self.tools.setpriv:
            prefix += [self.tools.setpriv, "--pdeathsig", "KILL"]
            if user is not None:
                # pdeathsig survives the uid change: setpriv sets it last, just before exec
                prefix += [f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups"]
                prefix += ["--no-new-privs"]
            prefix.append("--")
        elif bt.run_as:
            raise ConfigError(f"bot_types.{bt.name}.run_as needs setpriv (util-linux)")
        if self.tools.prlimit:
            prefix += [self.tools.prlimit, *rlimit_args(bt), "--"]
        return prefix

    def _warn_missing_tools(self) -> None:
        if self.tools.launcher:
            return  # it does both; run_as types without setpriv are a config error already
        if not self.tools.setpriv:
            log.warning(
                "setpriv (util-linux) not found: bots will NOT die with the server on kill -9"
            )
        if not self.tools.prlimit:
            log.warning("prlimit (util-linux) not found: bots run WITHOUT resource limits")


def _user(bt: BotTypeSettings) -> _User:
    try:
        entry = pwd.getpwnam(bt.run_as)
    except KeyError:
        raise ConfigError(f"bot_types.{bt.name}.run_as = {bt.run_as!r}: no such user") from None
    if os.geteuid() != 0:
        raise ConfigError(f"bot_types.{bt.name}.run_as = {bt.run_as!r}: needs the server as root")
    return _User(bt.run_as, entry.pw_uid, entry.pw_gid)


def _warn_unreachable(path: Path, user: _User, bot_type: str) -> None:
    """Warn when ``user`` cannot reach ``path`` (e.g. a venv under /root): every bot would fail.

    Checks owner/group/other execute bits along the resolved path; supplementary groups are
    ignored, so this can only err towards a needless warning.
    """
    real = path.resolve()
    for item in (*reversed(real.parents), real):
        st = item.stat()
        bit = 0o100 if st.st_uid == user.uid else 0o010 if st.st_gid == user.gid else 0o001
        if not st.st_mode & bit:
            log.warning(
                "bot_types.%s.run_as = %r cannot reach %s (no access to %s): set the type's "
                "command to an interpreter that user can run, e.g. /usr/bin/python3",
                bot_type,
                user.name,
                real,
                item,
            )
            return


def _force_rmtree(path: Path) -> None:
    def retry(func, failed, _exc):  # a bot may have chmod-ed its own folders to 000
        try:
            os.chmod(os.path.dirname(failed), 0o700)
            func(failed)
        except OSError as exc:
            log.warning("could not remove %s: %s", failed, exc)

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=retry)
    else:
        shutil.rmtree(path, onerror=retry)
