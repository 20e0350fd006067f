"""Real botsys processes for end-to-end and fault tests: `python -m botsys serve` replicas and
the mock webhook, each on a free loopback port, with their logs kept for the failure report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
ZYGOTE = "botsys-zygote"  # the comm of a zygote (zygote_main.py) and of what it forks around bots
SPARE = "botsys-spare"  # the bot of a zygote's spare, forked ahead of its request (no attempt)

# Short timings so failures show within seconds (tests state their figures against these).
FAST_CONFIG = """
[server]
drain_timeout_s = 5.0
[engine]
lease_ms = 2000
heartbeat_ms = 500
idle_wait_s = 0.5
retry_delay_ms = 200
[runner]
kill_grace_s = 1.0
bot_user = ""  # as the test's user, even root: bots may live in private tmp folders
[webhooks]
retry_delay_ms = 200
timeout_s = 5.0
lease_ms = 3000
allow = ["127.0.0.1", "localhost"]
[api]
rate_limit = "0"
"""


def write_config(path: Path, extra: str = "") -> Path:
    """FAST_CONFIG with ``extra`` TOML merged over it (a table may appear in both)."""
    merged = tomllib.loads(FAST_CONFIG)
    for table, values in tomllib.loads(extra).items():
        _merge(merged.setdefault(table, {}), values)
    path.write_text(_dump(merged))
    return path


def _merge(base: dict, extra: dict) -> None:
    for key, value in extra.items():
        if isinstance(value, dict):
            _merge(base.setdefault(key, {}), value)
        else:
            base[key] = value


def _dump(tables: dict, prefix: str = "") -> str:
    """A minimal TOML writer for config files: tables of scalars and lists."""
    lines, nested = [], []
    for key, value in tables.items():
        if isinstance(value, dict):
            nested.append((key, value))
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    out = (f"[{prefix}]\n" if prefix and lines else "") + "".join(line + "\n" for line in lines)
    for key, value in nested:
        out += _dump(value, f"{prefix}.{key}" if prefix else key)
    return out


@dataclass
class Proc:
    """A process we started; its output goes to a log file."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    port: int
    proc: subprocess.Popen | None = None
    name: str = ""
    cwd: Path = ROOT

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Proc:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.args, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.cwd
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_http(self, path: str = "/health", timeout: float = 30.0, status: int = 200) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=1) as resp:
                    if resp.status == status:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} not ready after {timeout}s:\n{self.log()}")

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def log(self, tail: int = 60) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-tail:])

    def children(self) -> list[int]:
        """Pids whose parent is this process (botsys-launch per spawned bot, the zygotes)."""
        return children_of(self.pid)

    def zygotes(self) -> list[int]:
        """This replica's zygotes (``start = "fork"`` types, python's default)."""
        return [pid for pid in self.children() if comm(pid) == ZYGOTE]

    def attempts(self) -> list[int]:
        """One pid per running attempt, whichever way it started: its botsys-launch (spawn),
        or the group leader its zygote forked for it (fork: a leader, or a PID namespace's
        init; not a spare waiting for its attempt)."""
        zygotes = self.zygotes()
        spawned = [pid for pid in self.children() if pid not in zygotes]
        forked = [pid for z in zygotes for pid in children_of(z) if _leads_group(pid)]
        return spawned + [pid for pid in forked if _runs_a_bot(pid)]

    def descendants(self) -> list[int]:
        """Every process below this one: launchers, bots and what the bots started."""
        parents = {pid: _ppid(pid) for pid in _all_pids()}
        found, frontier = [], [self.pid]
        while frontier:
            below = [pid for pid, parent in parents.items() if parent in frontier]
            found += below
            frontier = below
        return found


def base_env(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("BOTSYS_", "MAX_", "REDIS_URL"))
    }
    env.update({"BOTSYS_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


@dataclass
class Cluster:
    """Replicas of `serve` on one Redis, plus an optional mock webhook."""

    tmp: Path
    redis_url: str
    config: Path
    replicas: list[Proc] = field(default_factory=list)
    env_extra: dict[str, str] = field(default_factory=dict)

    def add_replica(self, name: str | None = None, wait: bool = True, **env: str) -> Proc:
        name = name or f"replica-{len(self.replicas)}"
        port = free_port()
        p = Proc(
            [
                sys.executable,
                "-m",
                "botsys",
                "--config",
                str(self.config),
                "serve",
                "--port",
                str(port),
            ],
            base_env(REDIS_URL=self.redis_url, BOTSYS_REPLICA=name, **self.env_extra, **env),
            self.tmp / f"{name}.log",
            port,
            name=name,
        ).start()
        self.replicas.append(p)
        if wait:
            p.wait_http()
        return p

    def stop(self) -> None:
        for p in self.replicas:
            p.stop()


def start_mock_webhook(tmp: Path, **env: str) -> Proc:
    port = free_port()
    p = Proc(
        [sys.executable, "-m", "botsys", "mock-webhook", "--port", str(port)],
        base_env(**env),
        tmp / "mock-webhook.log",
        port,
        name="mock-webhook",
    ).start()
    p.wait_http()
    return p


def http(method: str, url: str, body: dict | None = None, headers: dict | None = None, timeout=10):
    """A tiny synchronous client: returns (status, parsed JSON or text, headers)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw, status, hdrs = resp.read(), resp.status, resp.headers
    except urllib.error.HTTPError as err:
        raw, status, hdrs = err.read(), err.code, err.headers
    try:
        return status, json.loads(raw), hdrs
    except ValueError:
        return status, raw.decode(errors="replace"), hdrs


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def stat_fields(pid: int | str) -> list[str] | None:
    """/proc/PID/stat after the command name: [state, ppid, pgrp, ...]; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def comm(pid: int) -> str | None:
    """/proc/PID/comm (the process's short name); None once it is gone."""
    try:
        with open(f"/proc/{pid}/comm") as fh:
            return fh.read().strip()
    except OSError:
        return None


def children_of(parent: int) -> list[int]:
    return [pid for pid in _all_pids() if _ppid(pid) == parent]


def _runs_a_bot(leader: int) -> bool:
    """A zygote's leader or init with a bot below it, not a spare's (whose bot waits)."""
    return any(comm(child) != SPARE for child in children_of(leader))


def _leads_group(pid: int) -> bool:
    fields = stat_fields(pid)
    return fields is not None and int(fields[2]) == pid


def _ppid(pid: int) -> int | None:
    fields = stat_fields(pid)
    return int(fields[1]) if fields else None


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] != "Z"
