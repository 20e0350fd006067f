"""Background samplers: Redis lease counts (ZCARD of each type's semaphore) and live probe bot
processes found in /proc (which also sees orphans Redis cannot)."""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections import defaultdict

import redis

from botsys.store.keys import Keys
from tests.support.procs import stat_fields

from .probes import PROBE

INTERVAL_S = 0.02


class _Sampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self._halt = threading.Event()
        self.samples = 0
        self.max: dict[str, int] = defaultdict(int)

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                counts = self.sample()
            except Exception:  # noqa: BLE001 (Redis down, a process vanished mid-read)
                counts = None
            if counts is not None:
                self.samples += 1
                for t, n in counts.items():
                    self.max[t] = max(self.max[t], n)
            self._halt.wait(INTERVAL_S)

    def sample(self) -> dict[str, int] | None:
        raise NotImplementedError

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


class LeaseSampler(_Sampler):
    """ZCARD of ``{T}:active`` for every type, every ~20 ms."""

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


def live_probes(cwd_under: str | None = None) -> dict[int, str]:
    """pid → type of every live (non-zombie) probe bot on the machine (or of one test: see
    ``_probe_processes``). botsys-launch carries the bot's command line and stays in front of
    it as its parent: a probe whose parent is a probe too is that launcher's bot, counted once
    through the launcher (which outlives it)."""
    found = _probe_processes(cwd_under)
    return {pid: t for pid, (t, parent) in found.items() if parent not in found}


def _probe_processes(cwd_under: str | None = None) -> dict[int, tuple[str, int]]:
    """pid → (type, parent pid) of every live probe process: launchers and bots; only those
    working under ``cwd_under`` if given (a test's own bots: each runs in a private temporary
    directory under the replicas' TMPDIR, while other runs on the machine have theirs)."""
    found: dict[int, tuple[str, int]] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            t = probe_type(_cmdline(pid))
            if (
                t is not None
                and cwd_under
                and not os.readlink(f"/proc/{pid}/cwd").startswith(cwd_under)
            ):
                continue
            fields = stat_fields(pid) if t is not None else None
            if fields and fields[0] != "Z":
                found[int(pid)] = (t, int(fields[1]))
        except OSError:
            continue
    return found


class ProcSampler(_Sampler):
    """Counts live probe processes per type; remembers when each pid was last seen alive."""

    def __init__(self, cwd_under: str | None = None) -> None:
        super().__init__()
        self.cwd_under = cwd_under
        self.last_seen_ns: dict[int, int] = {}
        self.sample_ns: list[int] = []  # when each sample ended

    def sample(self) -> dict[str, int]:
        found = _probe_processes(self.cwd_under)
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
