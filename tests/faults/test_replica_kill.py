"""Case 1: `kill -9` of one replica while it runs jobs of every type."""

from __future__ import annotations

import random
import signal
import time

import pytest

from tests.support.procs import pid_alive, wait_for
from tests.support.timing import MARGIN_S

from .harness import IDLE_WAIT_S, LEASE_S, LIMITS, TYPES
from .probes import overlap_by_type, starts_per_job
from .samplers import LeaseSampler, ProcSampler

pytestmark = [pytest.mark.faults]


def test_kill_9_a_replica_loses_nothing_and_never_exceeds_a_limit(env):
    replicas = env.start()
    rng = random.Random(1)
    counts = {"python": 60, "node": 50, "java": 25}
    specs = [(t, rng.randint(50, 300)) for t, n in counts.items() for _ in range(n)]
    rng.shuffle(specs)
    with LeaseSampler(env.redis_server.url, TYPES) as leases, ProcSampler(env.bot_tmp) as procs:
        ids = env.invoke_many(specs)
        victim = replicas[1]
        wait_for(
            lambda: len(env.running_on(victim.name)) >= 3,
            20,
            interval=0.01,
            what=f"{victim.name} to run 3 jobs",
        )
        bots = victim.descendants()  # launchers, bots and their children
        victim.signal(signal.SIGKILL)
        t_kill = time.monotonic()
        victim.proc.wait(5)
        held = env.running_on(victim.name)  # its leases outlive it until they expire
        wait_for(lambda: not any(pid_alive(p) for p in bots), 5, interval=0.01, what="bots dead")
        bots_dead_s = time.monotonic() - t_kill
        wait_for(lambda: not env.running_on(victim.name), 10, interval=0.02, what="leases gone")
        leases_gone_s = time.monotonic() - t_kill
        jobs = env.wait_terminal(ids, 90)
    runs = env.runs()

    assert len(ids) >= 100 and held, f"{len(ids)} jobs, {len(held)} held by the victim"
    bad = [(i, j["state"], j.get("error")) for i, j in jobs.items() if j["state"] != "succeeded"]
    assert not bad, f"{len(bad)} jobs did not succeed, e.g. {bad[:3]}"
    starts = starts_per_job(runs)
    assert set(starts) == set(ids), f"{len(set(ids) - set(starts))} jobs never started"
    rerun = {j for j, n in starts.items() if n > 1}
    assert rerun <= held, f"re-executed {sorted(rerun - held)} that the victim did not hold"
    assert len(rerun) <= len(held), f"{len(rerun)} re-executions > {len(held)} held"
    # Its bots die before its leases can expire, so no re-run ever overlaps them; the leases
    # are reaped by a survivor's next claim once they expire.
    assert bots_dead_s < LEASE_S, f"the victim's {len(bots)} bots outlived it by {bots_dead_s:.2f}s"
    assert leases_gone_s < LEASE_S + IDLE_WAIT_S + MARGIN_S, (
        f"its leases lasted {leases_gone_s:.2f}s after the kill"
    )

    t_kill_ns = int(t_kill * 1e9)
    assert procs.sample_ns[0] < t_kill_ns < procs.sample_ns[-1], "/proc sampled across the kill"
    fallback = int((t_kill + 1) * 1e9)
    by_log = overlap_by_type(runs, lambda r: procs.death_bound_ns(r.pid, fallback))
    figures = f"bot logs {by_log}, leases {dict(leases.max)}, /proc {dict(procs.max)}"
    print(
        f"kill -9: held {len(held)}, re-executed {len(rerun)}, bots dead {bots_dead_s:.2f}s, "
        f"leases gone {leases_gone_s:.2f}s; max overlap {figures}"
    )
    for t in TYPES:
        for name, seen in (("bot logs", by_log), ("leases", leases.max), ("/proc", procs.max)):
            assert seen[t] <= LIMITS[t], f"{name}: max overlap {seen[t]} > limit {LIMITS[t]} ({t})"
        assert by_log[t] == LIMITS[t], f"saturated {t} reached only {by_log[t]} of {LIMITS[t]}"
        assert leases.max[t] == LIMITS[t], f"{t} leases reached only {leases.max[t]}"
