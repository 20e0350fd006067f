"""Engine throughput: enqueue + claim + complete through the real Lua scripts on a local
redis-server, beside raw redis-py round trips measured in the same run.

    .venv/bin/python bench/engine.py [--jobs 20000] [--concurrency 50]

Two figures: the scripts alone (JobQueue calls from C concurrent loops), and the whole
Orchestrator draining no-op jobs (a runner that returns at once instead of a subprocess).
Both, and the baseline, run on the event loop `serve` uses (uvloop).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from redis.asyncio import Redis  # noqa: E402

from bench.common import ratio_line, record, redis_server, run_like_serve  # noqa: E402
from botsys.config import load_settings  # noqa: E402
from botsys.orchestrator import Orchestrator  # noqa: E402
from botsys.queue import JobQueue  # noqa: E402
from botsys.runners.types import AttemptOutcome  # noqa: E402
from botsys.store.connection import Store, make_client  # noqa: E402


def settings(prefix: str, limit: int):
    return load_settings(
        environ={},
        overrides={
            "redis.prefix": prefix,
            "bot_types.python.limit": limit,
            "engine.max_in_flight": min(limit, 1000),
        },
    )


async def raw_round_trips(r: Redis, n: int, concurrency: int) -> float:
    async def loop(k):
        for _ in range(k):
            await r.ping()

    t = time.perf_counter()
    await asyncio.gather(*(loop(n // concurrency) for _ in range(concurrency)))
    return n / (time.perf_counter() - t)


async def enqueue_all(q: JobQueue, n: int, concurrency: int) -> float:
    async def loop(k):
        for _ in range(k):
            await q.enqueue("python", "hello", {"n": 1})

    t = time.perf_counter()
    await asyncio.gather(*(loop(n // concurrency) for _ in range(concurrency)))
    return (n // concurrency * concurrency) / (time.perf_counter() - t)


async def script_cycles(q: JobQueue, n: int, concurrency: int, batch: int) -> float:
    """Drain n queued jobs: each loop claims a batch, then completes each claim."""
    done = 0

    async def loop():
        nonlocal done
        while done < n:
            _, claims = await q.claim("python", batch)
            if not claims:
                return
            for c in claims:
                await q.complete(c, "succeeded", result_json="1")
            done += len(claims)

    t = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return done / (time.perf_counter() - t)


def serve_store(url: str, prefix: str) -> Store:
    """The Store `serve` makes (retries, hiredis framing): the raw baseline uses its client."""
    return make_client(url, prefix=prefix)


class NoopRunner:
    async def run(self, spec, sink):
        return AttemptOutcome("succeeded", result=1)


async def orchestrator_drain(url: str, n: int, concurrency: int) -> float:
    s = settings("bench-orch", limit=concurrency)
    store = serve_store(url, s.redis.prefix)
    r = store.redis
    q = JobQueue(store, s, "bench")
    await q.seed_limits()
    await enqueue_all(q, n, 50)
    orch = Orchestrator(q, NoopRunner(), s, bot_types=["python"])
    t = time.perf_counter()
    await orch.start()
    key = s.bot_types["python"] and q.keys.meta("python")
    while int(await r.hget(key, "succeeded") or 0) < n // 50 * 50:
        await asyncio.sleep(0.01)
    rate = (n // 50 * 50) / (time.perf_counter() - t)
    await orch.stop(0)
    await store.close()
    return rate


async def main(args) -> dict:
    with redis_server() as url:
        s = settings("bench", limit=args.jobs)
        store = serve_store(url, s.redis.prefix)
        r = store.redis
        q = JobQueue(store, s, "bench")
        await q.seed_limits()
        raw = await raw_round_trips(r, args.jobs, args.concurrency)
        enq = await enqueue_all(q, args.jobs, args.concurrency)
        cyc = await script_cycles(q, args.jobs, args.concurrency, args.batch)
        await store.close()
        orch = await orchestrator_drain(url, args.jobs, args.concurrency)
    print(ratio_line("enqueue", enq, raw, "ops/s", "raw PING round trips"))
    print(ratio_line("claim+complete cycles", cyc, raw, "jobs/s", "raw PING round trips"))
    print(ratio_line("orchestrator no-op drain", orch, raw, "jobs/s", "raw PING round trips"))
    figures = {
        "rawRoundTripsPerS": raw,
        "enqueuePerS": enq,
        "claimCompletePerS": cyc,
        "orchestratorNoopJobsPerS": orch,
        "jobs": args.jobs,
        "concurrency": args.concurrency,
    }
    record("engine", figures)
    return figures


if __name__ == "__main__":
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--jobs", type=int, default=20000)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--batch", type=int, default=10)
    run_like_serve(main(p.parse_args()))
