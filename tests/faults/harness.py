"""One fault-test environment: a private AOF redis-server, `serve` replicas configured for the
probe bots and short timings, and reads of job state straight from Redis (fast and available
even while the HTTP API is busy)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from botsys.states import TERMINAL as TERMINAL_STATES
from botsys.store.keys import Keys
from tests.support.procs import Cluster, Proc, http, wait_for
from tests.support.redis_server import RedisServer

from .probes import BOTS_DIR, Run, read_runs

TYPES = ["python", "node", "java"]
LIMITS = {"python": 3, "node": 4, "java": 2}
TERMINAL = set(TERMINAL_STATES)
INVOKE_WORKERS = 8  # invoke_many's threads: at most this many requests in flight at once
# What a replica may answer while its Redis connection is cut: a dropped connection (0) or
# 503 (store unreachable). A 500 is a bug and fails the test at once.
RETRYABLE = (0, 503)

# FAST_CONFIG's timings (lease 2 s, heartbeat 0.5 s), small limits so saturation is quick, and
# webhook retries that outlast a 20 s receiver outage (50 attempts, backoff capped at 1 s).
BASE_CONFIG: dict[str, dict[str, Any]] = {
    "server": {"drain_timeout_s": 5.0},
    "engine": {
        "lease_ms": 2000,
        "heartbeat_ms": 500,
        "idle_wait_s": 0.5,
        "retry_delay_ms": 200,
        "max_stalls": 2,
    },
    # bot_user "": the probes write to the test's private tmp folder and may kill their replica
    "runner": {"kill_grace_s": 1.0, "bots_dir": str(BOTS_DIR), "bot_user": ""},
    "webhooks": {
        "retry_delay_ms": 200,
        "max_delay_ms": 1000,
        "max_retries": 50,
        "timeout_s": 3.0,
        "lease_ms": 6000,
        "allow": ["127.0.0.1", "localhost"],
    },
    "api": {"rate_limit": "0"},
    **{f"bot_types.{t}": {"limit": n} for t, n in LIMITS.items()},
}


# The timings the fault tests derive their bounds from.
LEASE_S = BASE_CONFIG["engine"]["lease_ms"] / 1000
HEARTBEAT_S = BASE_CONFIG["engine"]["heartbeat_ms"] / 1000
IDLE_WAIT_S = BASE_CONFIG["engine"]["idle_wait_s"]
KILL_GRACE_S = BASE_CONFIG["runner"]["kill_grace_s"]
WEBHOOK_TIMEOUT_S = BASE_CONFIG["webhooks"]["timeout_s"]
CLAIM_BACKOFF_CAP_S = 2.0  # the orchestrator's retry of a failed claim (orchestrator.py)


def config_toml(overrides: dict[str, dict[str, Any]] | None = None) -> str:
    """BASE_CONFIG with per-table overrides, as TOML (JSON scalars and lists are valid TOML)."""
    tables = {k: dict(v) for k, v in BASE_CONFIG.items()}
    for table, values in (overrides or {}).items():
        tables.setdefault(table, {}).update(values)
    lines = []
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


@dataclass
class FaultEnv:
    tmp: Path
    java_cache: Path
    redis_server: RedisServer | None = None
    cluster: Cluster | None = None
    probe_log: Path = field(init=False)
    keys: Keys = field(default_factory=Keys)
    _rr: int = 0
    invoke_retries: Counter[int] = field(default_factory=Counter)  # status → retries
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.probe_log = self.tmp / "probe.log"
        self.bot_tmp = self.tmp / "bot-tmp"
        self.bot_tmp.mkdir(exist_ok=True)

    # -- set-up ------------------------------------------------------------------------------

    def start(self, replicas: int = 3, overrides: dict | None = None, **env: str) -> list[Proc]:
        self.redis_server = RedisServer(self.tmp / "redis", aof=True).start()
        # The test's own client is killed too by CLIENT KILL: it reconnects and retries.
        self.redis = redis.Redis.from_url(
            self.redis_server.url,
            decode_responses=True,
            socket_timeout=5,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 5),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        )
        overrides = dict(overrides or {})
        runner = {**overrides.get("runner", {}), "cache_dir": str(self.java_cache)}
        overrides["runner"] = runner
        config = self.tmp / "botsys.toml"
        config.write_text(config_toml(overrides))
        self.cluster = Cluster(
            self.tmp, self.redis_server.url, config, env_extra={"TMPDIR": str(self.bot_tmp), **env}
        )
        procs = [self.add_replica(f"r{i}", wait=False) for i in range(replicas)]
        for p in procs:
            p.wait_http()
        return procs

    def add_replica(self, name: str, wait: bool = True, **env: str) -> Proc:
        assert self.cluster is not None
        return self.cluster.add_replica(name, wait=wait, **env)

    @property
    def replicas(self) -> list[Proc]:
        assert self.cluster is not None
        return self.cluster.replicas

    def live_replicas(self) -> list[Proc]:
        return [p for p in self.replicas if p.alive()]

    def close(self) -> None:
        if self.cluster is not None:
            for p in self.cluster.replicas:
                if p.alive():
                    p.proc.kill()  # a test that needs a clean exit checks it itself
                p.stop()
        if self.redis_server is not None:
            self.redis_server.kill()

    def report(self) -> str:
        parts = []
        for p in self.replicas if self.cluster else []:
            parts.append(f"--- {p.name} (pid {p.pid}, rc {p.proc.poll()}) ---\n{p.log(25)}")
        return "\n".join(parts)

    # -- jobs --------------------------------------------------------------------------------

    def payload(self, sleep_ms: int = 0, **extra: Any) -> dict:
        return {"log": str(self.probe_log), "sleepMs": sleep_ms, **extra}

    def invoke(
        self,
        bot_type: str,
        sleep_ms: int = 0,
        *,
        replica: Proc | None = None,
        webhook: str | None = None,
        headers: dict | None = None,
        **extra: Any,
    ) -> str:
        if replica is None:
            live = self.live_replicas()
            with self._lock:
                self._rr += 1
                replica = live[self._rr % len(live)]
        body: dict[str, Any] = {
            "botType": bot_type,
            "bot": "fault_probe",
            "payload": self.payload(sleep_ms, **extra),
        }
        if webhook:
            body["webhookUrl"] = webhook
        # What a careful client does: one Idempotency-Key per logical job, retried on 503 or a
        # dropped connection (a replica may lose Redis mid-request), never a second job.
        headers = {"Idempotency-Key": uuid.uuid4().hex, **(headers or {})}
        for _ in range(20):
            try:
                status, reply, _ = http("POST", replica.url + "/invoke", body, headers=headers)
            except OSError:
                status, reply = 0, "connection error"
            if status in (200, 202):
                return reply["jobId"]
            assert status in RETRYABLE, f"POST /invoke answered {status}: {reply}"
            with self._lock:
                self.invoke_retries[status] += 1
            time.sleep(0.2)
        raise AssertionError(f"POST /invoke kept failing: {status} {reply}")

    def invoke_many(self, specs: list[tuple[str, int]], webhook: str | None = None) -> list[str]:
        with ThreadPoolExecutor(INVOKE_WORKERS) as pool:
            return list(pool.map(lambda s: self.invoke(s[0], s[1], webhook=webhook), specs))

    def jobs(self, ids: list[str]) -> dict[str, dict[str, str]]:
        pipe = self.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hgetall(self.keys.job(job_id.split("-", 1)[0], job_id))
        return dict(zip(ids, pipe.execute(), strict=True))

    def unfinished(self, ids: list[str]) -> list[str]:
        return [i for i, j in self.jobs(ids).items() if j.get("state") not in TERMINAL]

    def wait_terminal(self, ids: list[str], timeout: float = 60.0) -> dict[str, dict[str, str]]:
        def done():
            try:
                return not self.unfinished(ids)
            except redis.ConnectionError:
                return False

        try:
            wait_for(done, timeout, interval=0.1, what=f"{len(ids)} jobs to finish")
        except TimeoutError:
            left = self.unfinished(ids)
            raise AssertionError(
                f"{len(left)} of {len(ids)} jobs not terminal after {timeout}s: "
                f"{[(i, self.jobs([i])[i].get('state')) for i in left[:5]]}\n{self.report()}"
            ) from None
        return self.jobs(ids)

    def runs(self) -> list[Run]:
        return read_runs(self.probe_log)

    def running_on(self, replica_name: str) -> set[str]:
        """Jobs holding a lease (in a semaphore) whose owner is ``replica_name``."""
        out = set()
        for t in TYPES:
            ids = self.redis.zrange(self.keys.active(t), 0, -1)
            for job_id, job in self.jobs(ids).items():
                if job.get("owner") == replica_name and job.get("state") == "running":
                    out.add(job_id)
        return out

    def counters(self) -> dict[str, dict[str, int]]:
        out = {}
        for t in TYPES:
            meta = self.redis.hgetall(self.keys.meta(t))
            out[t] = {s: int(meta.get(s, 0)) for s in TERMINAL_STATES}
        return out


class Supervisor(threading.Thread):
    """Restarts replicas that die (same name, new port), at most ``max_restarts`` times."""

    def __init__(self, env: FaultEnv, max_restarts: int) -> None:
        super().__init__(daemon=True)
        self.env = env
        self.max_restarts = max_restarts
        self.restarts: list[tuple[str, int]] = []  # (name, pid of the dead process)
        self.slots = {p.name: p for p in env.live_replicas()}
        self._halt = threading.Event()
        self._killed: set[str] = set()

    def run(self) -> None:
        while not self._halt.wait(0.05):
            self._kill_on_request()
            for name, p in list(self.slots.items()):
                if p.alive() or len(self.restarts) >= self.max_restarts:
                    continue
                self.restarts.append((name, p.pid))
                self.slots[name] = self.env.add_replica(name, wait=False)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def _kill_on_request(self) -> None:
        """``K <pid>`` from a killParent probe: a bot in its own PID namespace cannot signal its
        replica, so the test does it for the bot (replicas only, each once)."""
        try:
            lines = self.env.probe_log.read_text().splitlines()
        except OSError:
            return
        replicas = {p.pid: p for p in self.env.replicas}
        for line in lines:
            f = line.split()
            if len(f) == 2 and f[0] == "K" and int(f[1]) in replicas and f[1] not in self._killed:
                self._killed.add(f[1])
                replicas[int(f[1])].proc.kill()

    def __enter__(self) -> Supervisor:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def monotonic_ns() -> int:
    return time.monotonic_ns()
