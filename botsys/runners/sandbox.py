"""What a bot runs inside: the native wrapper, its user, the scrubbed environment, the folder.

The wrapper is ``botsys-launch <server pid> data=... [user=UID:GID] [ns=pid] [ns=net] --
<command>`` (``launch.c``, built by ``launcher.py``): it arms a parent-death signal, sets the
rlimits, switches to the bot's user (users.py: never root when the server is root, unless asked)
and starts the bot in a PID namespace of its own, so nothing runs in the server between fork
and exec (no ``preexec_fn``: the server has threads). Everything the bot starts dies with it,
setsid or not; when the server dies the launcher kills the bot's whole process group.
Where namespaces are refused (no ``ns=pid``), a child subreaper inside the launcher ends what
the bot orphaned instead. ``network = "none"`` adds a network namespace with only loopback.

Without a C compiler it is the util-linux chain ``setpriv --pdeathsig KILL [--reuid ...] --
prlimit --data=... -- <command>``: the limits, the user, and the bot's own death with the
server, for one more exec (~1 ms per bot); no namespaces, so a bot's setsid descendants can
outlive it (warned at start-up). A Python wrapper would cost ~5x a bot's start-up.

PDEATHSIG is tied to the *thread* that forked the child: supervise.py forks from the
event-loop thread, so a bot dies when that thread (in practice: the server process) dies.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from botsys.config import BotTypeSettings, ConfigError, Settings
from botsys.runners.cache_dir import default_cache_dir
from botsys.runners.jdk import cached_jdk
from botsys.runners.launcher import build_launcher, probe
from botsys.runners.node_cache import compile_cache_env, node_version, runs_node
from botsys.runners.registry import bots_root
from botsys.runners.users import (
    BotUser,
    bot_user,
    check_reach,
    command_path,
    interpreter_for,
    temp_root,
)

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


def rlimits(bt: BotTypeSettings) -> list[tuple[str, int, int]]:
    """``rlimit_args`` as (name, soft, hard): what a fork-mode bot's leader sets itself."""
    out = []
    for arg in rlimit_args(bt):
        name, _, value = arg.removeprefix("--").partition("=")
        soft, _, hard = value.partition(":")
        out.append((name, int(soft), int(hard or soft)))
    return out


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


@functools.cache
def launcher_supports(launcher: str, option: str) -> bool:
    """Can this machine give a bot that namespace (``ns=pid``, ``ns=net``)? Probed once."""
    return probe(launcher, option)


class Sandbox:
    """Per-type wrapper prefix and environment, computed once from the settings."""

    def __init__(self, settings: Settings, tools: Tools | None = None) -> None:
        self.tools = tools or find_tools(default_cache_dir(settings.runner.cache_dir))
        self._base_env = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
        self._base_env.setdefault("PATH", DEFAULT_PATH)
        self._base_env.setdefault("LANG", "C.UTF-8")
        self.jdk = cached_jdk(settings.runner.java)  # {java}, {javac}
        types = settings.bot_types
        self._users = {n: bot_user(bt, settings.runner) for n, bt in types.items()}
        self._python = {
            n: interpreter_for(self._users[n]) if _runs_python(bt) else sys.executable
            for n, bt in types.items()
        }
        self.pid_namespace = bool(self.tools.launcher) and launcher_supports(
            self.tools.launcher, "ns=pid"
        )
        self._prefix = {n: self._build_prefix(bt, as_user=True) for n, bt in types.items()}
        # The compiler writes the shared build cache, so it runs as the server, not run_as.
        self._compile_prefix = {n: self._build_prefix(bt, as_user=False) for n, bt in types.items()}
        self._env = {n: parse_env(bt) for n, bt in types.items()}
        self._types = types  # live: types made at runtime appear (control/catalog.py)
        self._add_node_compile_cache(settings)
        self._warn_missing_tools()
        self._check_users(settings)

    def prefix(self, bot_type: str) -> list[str]:
        return self._prefix[self._runtime(bot_type)]

    def compile_prefix(self, bot_type: str) -> list[str]:
        return self._compile_prefix[self._runtime(bot_type)]

    def env(self, bot_type: str, workdir: Path) -> dict[str, str]:
        env = dict(self._base_env, HOME=str(workdir), TMPDIR=str(workdir))
        env.update(self._env[self._runtime(bot_type)])
        return env

    def fork_plan(self, bot_type: str) -> tuple[str, dict, dict[str, str]]:
        """A fork-mode type's zygote (zygote_main.py): its interpreter, the plan that gives each
        attempt what the launcher prefix gives a spawned bot (limits, user, namespaces), and its
        environment (the type's, so PYTHON* variables shape the zygote as they would a bot).
        A type made at runtime forks in its runtime's sandbox, as it spawns in it."""
        bot_type = self._runtime(bot_type)
        bt = self._types[bot_type]
        user = self._users.get(bot_type)
        plan = {
            "limits": rlimits(bt),
            "user": [user.uid, user.gid] if user is not None else None,
            "pid_ns": self.pid_namespace,
            "net_ns": bt.network == "none",
            "preload": list(bt.preload),
        }
        env = dict(self._base_env, HOME="/nonexistent")  # no user site-packages, as for a bot
        env.update(self._env[bot_type])
        return self._python[bot_type], plan, env

    def make_workdir(self, bot_type: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=f"botsys-{bot_type}-"))
        user = self._users.get(self._runtime(bot_type))
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

    def python(self, bot_type: str) -> str:
        """``{python}`` for the type: the server's interpreter unless its bot user cannot run it."""
        return self._python[self._runtime(bot_type)]

    def _runtime(self, bot_type: str) -> str:
        """A type made at runtime runs in the sandbox of its runtime (a configured type)."""
        bt = self._types.get(bot_type)
        return (bt.runtime or bot_type) if bt is not None else bot_type

    @staticmethod
    def values(
        script: Path,
        bot: str,
        build: str,
        workdir: Path,
        python: str | None = None,
        *,
        java: str = "java",
        javac: str = "javac",
        classpath: str = "",
    ) -> dict[str, str]:
        return {
            # the server's own interpreter (PATH's may be a slow shim), or the bot user's
            "python": python or sys.executable,
            "script": str(script),
            "bot": bot,
            "build": build,
            "workdir": str(workdir),
            # the selected JDK (jdk.py) and the build as one jar (class_archive.py)
            "java": java,
            "javac": javac,
            "classpath": classpath or build,
        }

    def _build_prefix(self, bt: BotTypeSettings, as_user: bool) -> list[str]:
        user = self._users.get(bt.name) if as_user else None
        if self.tools.launcher:
            return self._launcher_prefix(bt, user)
        if bt.network == "none":
            raise ConfigError(
                f'bot_types.{bt.name}.network = "none" needs botsys-launch (a C compiler, '
                "see docs/BOTS.md)"
            )
        prefix: list[str] = []
        if self.tools.setpriv:
            prefix += [self.tools.setpriv, "--pdeathsig", "KILL"]
            if user is not None:
                # pdeathsig survives the uid change: setpriv sets it last, just before exec
                prefix += [f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups"]
                prefix += ["--no-new-privs"]
            prefix.append("--")
        elif user is not None:
            raise ConfigError(
                f"bot_types.{bt.name}: running bots as {user.name!r} needs botsys-launch "
                "(a C compiler) or setpriv (util-linux)"
            )
        if self.tools.prlimit:
            prefix += [self.tools.prlimit, *rlimit_args(bt), "--"]
        return prefix

    def _launcher_prefix(self, bt: BotTypeSettings, user: BotUser | None) -> list[str]:
        assert self.tools.launcher is not None
        options = [arg.removeprefix("--") for arg in rlimit_args(bt)]
        if user is not None:
            options.append(f"user={user.uid}:{user.gid}")
        if self.pid_namespace:
            options.append("ns=pid")
        if bt.network == "none":
            if not launcher_supports(self.tools.launcher, "ns=net"):
                raise ConfigError(
                    f'bot_types.{bt.name}.network = "none": this machine refuses a network '
                    "namespace (unshare CLONE_NEWNET; in a container: allow it, e.g. not under "
                    "docker's default seccomp profile without user namespaces)"
                )
            options.append("ns=net")
        return [self.tools.launcher, str(os.getpid()), *options, "--"]

    def _add_node_compile_cache(self, settings: Settings) -> None:
        """NODE_COMPILE_CACHE for the node types whose node has it (node_cache.py)."""
        cache = default_cache_dir(settings.runner.cache_dir) / "node-compile-cache"
        for name, bt in settings.bot_types.items():
            if runs_node(bt.command):
                user = self._users[name]
                owner = (user.uid, user.gid) if user is not None else None
                version = node_version(bt.command[0], self._base_env["PATH"])
                extra = compile_cache_env(version, cache / name, self._env[name], owner)
                self._env[name] = {**extra, **self._env[name]}

    def _check_users(self, settings: Settings) -> None:
        """Start-up: each bot user can reach its command, bots, temp folder and builds."""
        if os.geteuid() == 0 and any(u is None for u in self._users.values()):
            log.warning(
                "bots of %s run as root (runner.bot_user is empty or run_as = root): they can "
                "read this server's secrets",
                ", ".join(sorted(n for n, u in self._users.items() if u is None)),
            )
        root = bots_root(settings)
        for name, user in self._users.items():
            if user is None:
                continue
            bt = settings.bot_types[name]
            needs = {"the bots folder": (root, 0o5), "the temp folder": (temp_root(), 0o1)}
            folder = root / name
            if folder.is_dir():
                needs["the bots folder"] = (folder, 0o5)
            argv0 = render(bt.command[:1], {"python": self._python[name], "java": self.jdk.java})[0]
            found = command_path(argv0, self._base_env["PATH"])
            if found is not None:
                needs["the command"] = (found, 0o1)
            if bt.compile:
                cache = default_cache_dir(settings.runner.cache_dir)
                needs["the build cache"] = (cache if cache.exists() else cache.parent, 0o1)
            check_reach(bt, user, needs)

    def _warn_missing_tools(self) -> None:
        if self.tools.launcher:
            if self.pid_namespace:
                return
            if _lists_children():
                log.warning(
                    "no PID namespace for bots (unshare refused): botsys-launch's subreaper "
                    "ends what a bot leaves behind instead (docs/BOTS.md)"
                )
            else:
                log.warning(
                    "no PID namespace for bots (unshare refused) and no "
                    "/proc/<pid>/task/<tid>/children: a bot's setsid or double-forked "
                    "descendants can outlive its job (docs/BOTS.md)"
                )
            return
        log.warning("botsys-launch unavailable: bots get no PID namespace (docs/BOTS.md)")
        if not self.tools.setpriv:
            log.warning(
                "setpriv (util-linux) not found: bots will NOT die with the server on kill -9"
            )
        if not self.tools.prlimit:
            log.warning("prlimit (util-linux) not found: bots run WITHOUT resource limits")


def _lists_children() -> bool:
    """Can a process list its children (the kernel's CONFIG_PROC_CHILDREN)? The launcher's
    subreaper needs it to find what a bot orphaned."""
    return Path(f"/proc/self/task/{threading.get_native_id()}/children").exists()


def _runs_python(bt: BotTypeSettings) -> bool:
    return any("{python}" in part for part in bt.command)


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
