"""Case 9: 1000 short jobs leave no zombie, no leaked descriptor and no temp folder behind."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tests.support.fds import open_fds
from tests.support.procs import stat_fields, wait_for

from .harness import INVOKE_WORKERS, LIMITS, TYPES
from .probes import starts_per_job
from .samplers import live_probes

pytestmark = [pytest.mark.faults]

JOBS = {"python": 900, "node": 70, "java": 30}
PYTHON_LIMIT = 6
POOL = "tcp→redis"
# The Redis connection pool keeps every connection it opened for its busiest moment, so how
# far it grows depends on load (+6/+7 on a loaded box). That moment is bounded all the same:
# one caller per invoking thread's request, per running bot and per background loop (each
# type's dispatcher; heartbeat, flush, webhooks, notifier). A leak per job would be hundreds.
POOL_GROWTH_MAX = INVOKE_WORKERS + PYTHON_LIMIT + LIMITS["node"] + LIMITS["java"] + len(TYPES) + 4


def _leaks(before: Counter[str], after: Counter[str]) -> dict[str, tuple[int, int]]:
    """Kinds of descriptor held more often than before the run (the pool only beyond its
    bound). Fewer is no leak: the warm-up's last pipes may still have been closing."""
    grown = {k: (before[k], after[k]) for k in before | after if after[k] > before[k]}
    if after[POOL] - before[POOL] <= POOL_GROWTH_MAX:
        grown.pop(POOL, None)
    return grown


def _zombies(replica) -> list[int]:
    # a zygote keeps each leader a zombie until the server is done with its group, then reaps it
    mine = [*replica.children(), *replica.attempts()]
    return [pid for pid in mine if (stat_fields(pid) or ["gone"])[0] == "Z"]


def test_1000_short_jobs_leak_no_zombie_fd_or_temp_dir(env):
    replicas = env.start(overrides={"bot_types.python": {"limit": PYTHON_LIMIT}})
    rng = random.Random(9)
    warm = env.invoke_many([(t, 0) for t in JOBS for _ in range(6)])  # pools, caches, compile
    env.wait_terminal(warm, 60)
    peers = {env.redis_server.port: "redis"}

    def fds():
        return {p.name: open_fds(p.pid, peers) for p in replicas}

    baseline = fds()

    specs = [(t, rng.randint(0, 5)) for t, n in JOBS.items() for _ in range(n)]
    rng.shuffle(specs)
    ids = env.invoke_many(specs)
    jobs = env.wait_terminal(ids, 150)

    bad = {i: j["state"] for i, j in jobs.items() if j["state"] != "succeeded"}
    assert len(ids) == 1000 and not bad, f"not succeeded: {len(bad)}"
    starts = starts_per_job(env.runs())
    assert all(starts.get(i) == 1 for i in ids), "each job ran exactly once"
    wait_for(lambda: not any(_zombies(p) for p in replicas), 5, what="no zombie children")

    # Quiescence: the last bots' pipes and the last requests' sockets close just after their
    # jobs are recorded.
    def leaks():
        now = fds()
        return now, {n: grown for n in now if (grown := _leaks(baseline[n], now[n]))}

    try:
        wait_for(lambda: not leaks()[1], 10, 0.2, what="fds back to their kinds' counts")
    except TimeoutError:
        pass  # reported by the assertion below with the figures
    after, leaked = leaks()
    left = sorted(d.name for d in env.bot_tmp.iterdir() if d.name.startswith("botsys-"))
    print(
        f"hygiene: 1000/1000 succeeded once each; zombies 0; fds by replica "
        f"{ {n: sum(f.values()) for n, f in baseline.items()} } → "
        f"{ {n: sum(f.values()) for n, f in after.items()} }, Redis connections "
        f"{ {n: (baseline[n][POOL], after[n][POOL]) for n in after} }; leftover temp dirs "
        f"{len(left)}; live bots {len(live_probes(env.bot_tmp))}"
    )
    assert not leaked, f"fds not back (kind: before, after): {leaked}"
    assert not left, f"{len(left)} leftover temp dirs, e.g. {left[:3]}"
    assert not live_probes(env.bot_tmp), "no bot process left"
