"""Cases 4 and 5: redis-server killed and restarted from its AOF; client connections killed
over and over (`CLIENT KILL`) under load."""

from __future__ import annotations

import random
import threading
import time

import pytest
import redis

from botsys.api.problems import STORE_DEADLINE_S
from tests.support.procs import http, wait_for
from tests.support.timing import MARGIN_S

from .harness import CLAIM_BACKOFF_CAP_S, INVOKE_WORKERS, TYPES
from .probes import starts_per_job
from .receiver import Receiver

pytestmark = [pytest.mark.faults]

OUTAGE_S = 3.0


def _health(replica) -> int:
    try:
        return http("GET", replica.url + "/health", timeout=2)[0]
    except OSError:
        return 0


def _held(env) -> set[str]:
    return {j for p in env.replicas for j in env.running_on(p.name)}


def test_redis_kill_9_and_restart_from_aof_loses_no_acknowledged_job(env):
    replicas = env.start()
    rng = random.Random(4)
    acked = env.invoke_many([(t, rng.randint(100, 400)) for t in TYPES for _ in range(20)])
    wait_for(lambda: len(_held(env)) >= 5, 20, interval=0.01, what="5 running jobs")
    held = _held(env)
    env.redis_server.kill()
    t_kill = time.monotonic()

    degraded = {p.name: wait_for(lambda p=p: _health(p) == 503, 5, what="503") for p in replicas}
    refused = []
    for p in replicas * 2:
        t0 = time.monotonic()
        status, reply, _ = http(
            "POST",
            p.url + "/invoke",
            {"botType": "python", "bot": "fault_probe", "payload": env.payload()},
            timeout=5,
        )
        refused.append((status, time.monotonic() - t0))
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - t_kill)))  # the outage itself
    alive_during = [p.name for p in replicas if p.alive()]

    env.redis_server.start()
    t_back = time.monotonic()
    back = {}
    for p in replicas:
        wait_for(lambda p=p: _health(p) == 200, 10, what=f"{p.name} healthy")
        back[p.name] = time.monotonic() - t_back
    held |= _held(env)  # the restored leases (those not yet reaped)
    jobs = env.wait_terminal(acked, 90)
    runs = env.runs()
    t_back_ns = int(t_back * 1e9)
    after = [r.start_ns for r in runs if r.start_ns > t_back_ns]
    resumed_s = (min(after) - t_back_ns) / 1e9 if after else 0.0

    assert degraded and len(alive_during) == 3, f"alive while Redis was down: {alive_during}"
    assert all(s == 503 for s, _ in refused), f"POST /invoke while down: {refused}"
    slowest = max(d for _, d in refused)
    # Refused by the store deadline at the latest, never held for the outage.
    assert slowest < STORE_DEADLINE_S + MARGIN_S, f"POST /invoke took {slowest:.2f}s to refuse"
    # A health poll in flight when Redis returns (2 s timeout) reconnects on its next call.
    assert max(back.values()) < 2.0 + MARGIN_S, f"healthy again after {back} s"
    # Dispatchers retry claims with a backoff capped at 2 s, then start a bot.
    assert resumed_s < CLAIM_BACKOFF_CAP_S + 1.0 + MARGIN_S, (
        f"first bot started {resumed_s:.2f}s after Redis was back"
    )
    bad = {i: (j["state"], j.get("error")) for i, j in jobs.items() if j["state"] != "succeeded"}
    assert not bad, f"{len(bad)}/{len(acked)} acknowledged jobs not succeeded: {bad}"
    assert all(p.alive() for p in replicas), "no replica crashed"
    rerun = {j for j, n in starts_per_job(runs).items() if n > 1}
    assert rerun <= held, f"re-executed {rerun - held}, not running at the kill"
    print(
        f"redis kill -9: {len(acked)}/{len(acked)} acknowledged jobs succeeded; "
        f"{len(held)} running at the kill, {len(rerun)} re-executed; POST /invoke while "
        f"down: {len(refused)}x 503, slowest {slowest * 1000:.0f} ms; healthy "
        f"{max(back.values()):.2f}s and first bot start {resumed_s:.2f}s after Redis was back"
    )


class ConnectionKiller(threading.Thread):
    """Kills every other client's connection (normal, and every other round pub/sub)."""

    def __init__(self, url: str, every_s: float, for_s: float) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(url)
        self.every_s, self.for_s = every_s, for_s
        self.rounds = 0
        self.killed = 0
        self._halt = threading.Event()

    def run(self) -> None:
        self.client.client_setname("fault-killer")
        deadline = time.monotonic() + self.for_s
        while time.monotonic() < deadline and not self._halt.wait(self.every_s):
            self.killed += self.client.client_kill_filter(_type="normal", skipme=True)
            if self.rounds % 2:
                self.killed += self.client.client_kill_filter(_type="pubsub", skipme=True)
            self.rounds += 1

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
        self.client.close()


def test_client_connections_killed_repeatedly_lose_and_duplicate_nothing(env):
    replicas = env.start()
    receiver = Receiver().start()
    killer = ConnectionKiller(env.redis_server.url, every_s=1.5, for_s=12)
    rng = random.Random(5)
    try:
        killer.start()
        ids: list[str] = []
        for _ in range(3):  # load spread over the chaos window
            specs = [(t, rng.randint(100, 400)) for t in TYPES for _ in range(10)]
            ids += env.invoke_many(specs, webhook=receiver.url)
            wait_for(lambda ids=ids: len(env.unfinished(ids)) < 10, 30, 0.1, what="progress")
        killer.join(30)
        jobs = env.wait_terminal(ids, 60)
        counters = env.counters()
        got = wait_for(
            lambda: (b := receiver.by_job()) and set(ids) <= set(b) and b, 30, what="webhooks"
        )
    finally:
        killer.stop()
        receiver.stop()

    assert killer.rounds >= 6 and killer.killed > 0, f"{killer.rounds} rounds, {killer.killed}"
    assert all(p.alive() for p in replicas), [p.proc.poll() for p in replicas]
    bad = {i: (j["state"], j.get("error")) for i, j in jobs.items() if j["state"] != "succeeded"}
    assert not bad, f"not succeeded: {bad}"
    terminal = sum(sum(c.values()) for c in counters.values())
    assert terminal == len(ids), f"{terminal} terminal writes for {len(ids)} jobs: {counters}"
    wrong = {
        j: {r.webhook_id for r in got[j]}
        for j in ids
        if {r.webhook_id for r in got[j]} != {f"msg_{j}"}
    }
    assert not wrong, f"webhook ids differ from msg_<job>: {wrong}"
    # A CLIENT KILL round cuts at most the requests in flight then, one per invoking thread.
    retries = sum(env.invoke_retries.values())
    assert retries <= INVOKE_WORKERS * killer.rounds, f"POST retries {dict(env.invoke_retries)}"
    copies = sum(len(got[j]) for j in ids)
    reruns = sum(n - 1 for n in starts_per_job(env.runs()).values())
    print(
        f"CLIENT KILL: {killer.rounds} rounds, {killer.killed} connections killed; "
        f"{len(ids)}/{len(ids)} succeeded, {terminal} terminal writes, {copies} webhook copies "
        f"for {len(ids)} ids, {reruns} re-runs, POST retries by status "
        f"{dict(env.invoke_retries)}"
    )
