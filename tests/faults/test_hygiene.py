"""Case 9: 1000 short jobs leave no zombie, no leaked descriptor and no temp folder behind."""

from __future__ import annotations

import os
import random

import pytest

from tests.support.procs import stat_fields, wait_for

from .probes import starts_per_job
from .samplers import live_probes

pytestmark = [pytest.mark.faults]

JOBS = {"python": 900, "node": 70, "java": 30}


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _zombies(replica) -> list[int]:
    return [pid for pid in replica.children() if (stat_fields(pid) or ["gone"])[0] == "Z"]


def test_1000_short_jobs_leak_no_zombie_fd_or_temp_dir(env):
    replicas = env.start(overrides={"bot_types.python": {"limit": 6}})
    rng = random.Random(9)
    warm = env.invoke_many([(t, 0) for t in JOBS for _ in range(6)])  # pools, caches, compile
    env.wait_terminal(warm, 60)
    baseline = {p.name: _fds(p.pid) for p in replicas}

    specs = [(t, rng.randint(0, 5)) for t, n in JOBS.items() for _ in range(n)]
    rng.shuffle(specs)
    ids = env.invoke_many(specs)
    jobs = env.wait_terminal(ids, 150)

    bad = {i: j["state"] for i, j in jobs.items() if j["state"] != "succeeded"}
    assert len(ids) == 1000 and not bad, f"not succeeded: {len(bad)}"
    starts = starts_per_job(env.runs())
    assert all(starts.get(i) == 1 for i in ids), "each job ran exactly once"
    wait_for(lambda: not any(_zombies(p) for p in replicas), 5, what="no zombie children")

    def settled():
        return all(abs(_fds(p.pid) - baseline[p.name]) <= 5 for p in replicas)

    try:
        wait_for(settled, 10, interval=0.2, what="fd counts back to baseline")
    except TimeoutError:
        pass  # reported by the assertion below with the figures
    after = {p.name: _fds(p.pid) for p in replicas}
    alive = live_probes(str(env.bot_tmp))  # this test's: other runs may share the machine
    left = sorted(d.name for d in env.bot_tmp.iterdir() if d.name.startswith("botsys-"))
    print(
        f"hygiene: 1000/1000 succeeded once each; zombies 0; fds baseline {baseline} → "
        f"after {after}; leftover temp dirs {len(left)}; live bots {len(alive)}"
    )
    assert all(abs(after[n] - baseline[n]) <= 5 for n in after), f"fds {baseline} → {after}"
    assert not left, f"{len(left)} leftover temp dirs, e.g. {left[:3]}"
    assert not alive, "no bot process left"
