"""Background samplers: Redis lease counts (ZCARD of each type's semaphore) and live probe bot
processes found in /proc (which also sees orphans Redis cannot)."""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections import defaultdict
from pathlib import Path

import redis

from botsys.store.keys import Keys
from tests.support.procs import stat_fields

from .probes import PROBE

INTERVAL_S = 0.02


class _Sampler(threading.Thread):
    TRANSIENT: tuple[type[Exception], ...] = ()  # a missed sample, not a broken sampler

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self._halt = threading.Event()
        self.samples = 0
        self.missed = 0
        self.error: BaseException | None = None
        self.max: dict[str, int] = defaultdict(int)

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                self._sample_once()
                self._halt.wait(INTERVAL_S)
        except BaseException as exc:  # reported by check(): a sampler bug must fail the test
            self.error = exc

    def _sample_once(self) -> None:
        try:
            counts = self.sample()
        except self.TRANSIENT:
            self.missed += 1
            return
        self.samples += 1
        for t, n in counts.items():
            self.max[t] = max(self.max[t], n)

    def sample(self) -> dict[str, int]:
        raise NotImplementedError

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.stop()
        if exc_type is None:  # never hide the test's own failure behind the sampler's
            self.check()

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def check(self) -> None:
        """Fail if the sampler broke or never sampled: its maxima would prove nothing."""
        name = type(self).__name__
        if self.error is not None:
            raise AssertionError(f"{name} broke: {self.error!r}") from self.error
        assert self.samples > 0, f"{name} took no sample ({self.missed} missed)"


class LeaseSampler(_Sampler):
    """ZCARD of ``{T}:active`` for every type, every ~20 ms (a Redis blip misses a sample)."""

    TRANSIENT = (redis.RedisError,)

    def __init__(self, redis_url: str, types: list[str], prefix: str = "botsys") -> None:
        super().__init__()
        self.types = types
        self.keys = Keys(prefix)
        self.client = redis.Redis.from_url(
            redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
        )

    def sample(self) -> dict[str, int]:
        pipe = self.client.pipeline(transaction=False)
        for t in self.types:
            pipe.zcard(self.keys.active(t))
        return dict(zip(self.types, pipe.execute(), strict=True))

    def stop(self) -> None:
        super().stop()
        self.client.close()


def probe_type(cmdline: list[str]) -> str | None:
    """Which probe bot a command line runs (also while still in the setpriv/prlimit wrappers)."""
    for arg in cmdline:
        if arg.endswith(f"/bots/python/{PROBE}.py"):
            return "python"
        if arg.endswith(f"/bots/node/{PROBE}.js"):
            return "node"
        if arg == PROBE:
            return "java"
    return None


def _cmdline(pid: str) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as fh:
        return fh.read().decode(errors="replace").split("\0")


def _works_in(pid: str, prefix: str | None) -> bool:
    """Whether the process's working folder starts with ``prefix`` (each bot works in a
    private folder under its replica's TMPDIR), so probes of other test runs on the machine
    are not counted. Raises OSError once the process is gone."""
    return prefix is None or os.readlink(f"/proc/{pid}/cwd").startswith(prefix)


def live_probes(root: Path | None = None) -> dict[int, str]:
    """pid → type of every live (non-zombie) probe bot working under ``root`` (None: on the
    machine). botsys-launch carries the bot's command line and stays in front of it as its
    parent: a probe whose parent is a probe too is that launcher's bot, counted once through
    the launcher (which outlives it)."""
    found = _probe_processes(root)
    return {pid: t for pid, (t, parent) in found.items() if parent not in found}


def _probe_processes(root: Path | None = None) -> dict[int, tuple[str, int]]:
    """pid → (type, parent pid) of every live probe process working under ``root``:
    launchers and bots."""
    prefix = None if root is None else f"{root.resolve()}/"
    found: dict[int, tuple[str, int]] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            t = probe_type(_cmdline(pid))
            if t is not None and not _works_in(pid, prefix):
                continue
            fields = stat_fields(pid) if t is not None else None
            if fields and fields[0] != "Z":
                found[int(pid)] = (t, int(fields[1]))
        except OSError:
            continue
    return found


class ProcSampler(_Sampler):
    """Counts live probe processes per type; remembers when each pid was last seen alive."""

    def __init__(self, root: Path | None = None) -> None:
        super().__init__()
        self.root = root
        self.last_seen_ns: dict[int, int] = {}
        self.sample_ns: list[int] = []  # when each sample ended

    def sample(self) -> dict[str, int]:
        found = _probe_processes(self.root)
        now = time.monotonic_ns()  # every pid seen was alive before this; absent ones dead
        self.sample_ns.append(now)
        counts: dict[str, int] = defaultdict(int)
        for pid, (t, parent) in found.items():
            self.last_seen_ns[pid] = now  # bots too: the pid a probe logs is its own
            if parent not in found:  # a launcher and its bot count once
                counts[t] += 1
        return counts

    def death_bound_ns(self, pid: int, fallback_ns: int) -> int:
        """A time by which ``pid`` was certainly dead: the end of the first sample after the
        last one that saw it (``fallback_ns`` if no sample ever saw it or none came after)."""
        seen = self.last_seen_ns.get(pid)
        if seen is None:
            return fallback_ns
        i = bisect.bisect_right(self.sample_ns, seen)
        return self.sample_ns[i] if i < len(self.sample_ns) else fallback_ns
