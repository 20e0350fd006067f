"""Case 6: a poison job whose bot kills its replica each time it runs."""

from __future__ import annotations

import pytest

from .harness import Supervisor
from .probes import starts_per_job

pytestmark = [pytest.mark.faults]

MAX_STALLS = 2


def test_a_job_that_kills_its_replica_fails_after_max_stalls(env):
    env.start(overrides={"engine": {"max_stalls": MAX_STALLS}})
    pids = {p.pid for p in env.replicas}
    with Supervisor(env, max_restarts=MAX_STALLS + 2) as sup:
        normal = env.invoke_many([("node", 50 + 5 * i) for i in range(20)])
        poison = env.invoke("python", 0, killParent=True)
        jobs = env.wait_terminal([*normal, poison], 60)
    pids |= {p.pid for p in env.replicas}
    runs = [r for r in env.runs() if r.job_id == poison]
    dead = {pid for _, pid in sup.restarts}

    assert all(r.ppid in pids for r in runs), "the poison bot's parent is a serve replica"
    assert {r.ppid for r in runs} <= dead, "each replica that ran it was killed and restarted"
    assert len(runs) == MAX_STALLS + 1, f"started {len(runs)} times (max_stalls {MAX_STALLS})"
    p = jobs[poison]
    assert p["state"] == "failed" and "stalled" in p.get("error", ""), p
    assert len(sup.restarts) == MAX_STALLS + 1, f"{len(sup.restarts)} restarts"
    bad = {i: jobs[i]["state"] for i in normal if jobs[i]["state"] != "succeeded"}
    assert not bad, f"normal jobs not succeeded: {bad}"
    reruns = sum(n - 1 for j, n in starts_per_job(env.runs()).items() if j != poison)
    print(
        f"poison: started {len(runs)}x, final {p['state']} ({p['error']}); "
        f"{len(sup.restarts)} replica restarts; 20/20 others succeeded ({reruns} re-runs)"
    )
