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
    # A job running beside the poison at each of its crashes is charged the same stalls, and
    # stalled jobs are requeued together, so a slow neighbour can share its fate (seen once on a
    # loaded machine). Anything else must succeed: a normal job fails only as such a bystander.
    by_job: dict[str, list] = {}
    for r in env.runs():
        by_job.setdefault(r.job_id, []).append(r)
    bystanders = [i for i in normal if jobs[i]["state"] != "succeeded"]
    for i in bystanders:
        assert jobs[i]["state"] == "failed" and "stalled" in jobs[i].get("error", ""), jobs[i]
        killed = [r for r in by_job[i] if not r.finished]
        assert len(killed) == len(by_job[i]) == MAX_STALLS + 1, (i, by_job[i])
    assert len(bystanders) < len(normal), "the other jobs went on meanwhile"
    reruns = sum(n - 1 for j, n in starts_per_job(env.runs()).items() if j != poison)
    print(
        f"poison: started {len(runs)}x, final {p['state']} ({p['error']}); "
        f"{len(sup.restarts)} replica restarts; {len(normal) - len(bystanders)}/{len(normal)} "
        f"others succeeded, {len(bystanders)} failed beside it ({reruns} re-runs)"
    )
