"""botsys's engine beside a queue users would pick instead, same machine, same Redis, same run.

    .venv/bin/python bench/compare.py [--jobs 20000]

Drains N no-op jobs through botsys's Orchestrator (Lua claim + complete, a runner that returns
at once) and through arq (installed into .venv-bench from PyPI on first use; asyncio + Redis,
the closest Python queue to botsys), each on a fresh redis-server. Also reports Redis memory
per queued botsys job with a small payload.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from redis.asyncio import Redis  # noqa: E402

from bench.common import record, redis_server  # noqa: E402
from bench.engine import orchestrator_drain, settings  # noqa: E402
from botsys.queue import JobQueue  # noqa: E402
from botsys.store.connection import Store  # noqa: E402
from botsys.store.keys import Keys  # noqa: E402

BENCH_VENV = ROOT / ".venv-bench"
ARQ_VERSION = "0.28.0"

ARQ_DRAIN = textwrap.dedent(
    """
    import asyncio, sys, time
    from arq import create_pool
    from arq.connections import RedisSettings
    from arq.worker import Worker

    async def noop(ctx):
        return 1

    async def main(url, n):
        rs = RedisSettings.from_dsn(url)
        pool = await create_pool(rs)
        await asyncio.gather(*(pool.enqueue_job("noop") for _ in range(n)))
        worker = Worker([noop], redis_settings=rs, burst=True, max_jobs=50, poll_delay=0.01,
                        handle_signals=False, log_results=False, keep_result=0)
        t = time.perf_counter()
        await worker.async_run()
        rate = worker.jobs_complete / (time.perf_counter() - t)
        await worker.close()
        print(rate)

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


def ensure_arq() -> Path:
    python = BENCH_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    probe = subprocess.run([str(python), "-c", "import arq"], capture_output=True)
    if probe.returncode != 0:
        print(f"installing arq=={ARQ_VERSION} into {BENCH_VENV.name} …", flush=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                f"arq=={ARQ_VERSION}",
            ],
            check=True,
        )
    return python


def arq_drain(url: str, n: int) -> float:
    python = ensure_arq()
    out = subprocess.run(
        [str(python), "-c", ARQ_DRAIN, url, str(n)], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


async def memory_per_job(url: str, n: int = 2000) -> tuple[float, int]:
    s = settings("bench-mem", limit=1)
    store = Store(Redis.from_url(url, decode_responses=True), False, url, Keys(s.redis.prefix))
    r = store.redis
    q = JobQueue(store, s, "bench")
    await q.seed_limits()
    await q.enqueue("python", "hello", {"n": 0})  # create the per-type structures first
    before = int((await r.info("memory"))["used_memory"])
    for i in range(n):
        await q.enqueue("python", "hello", {"user": i, "task": "resize", "size": [640, 480]})
    after = int((await r.info("memory"))["used_memory"])
    _, [claim] = await q.claim("python", 1)
    one_hash = int(await r.memory_usage(store.keys.job("python", claim.job_id)))
    await store.close()
    return (after - before) / n, one_hash


async def main(args) -> dict:
    with redis_server() as url:
        ours = await orchestrator_drain(url, args.jobs, 50)
        per_job, one_hash = await memory_per_job(url)
    with redis_server() as url:
        theirs = arq_drain(url, args.jobs)
    print(
        f"no-op drain of {args.jobs} jobs: botsys {ours:,.0f} jobs/s vs arq {theirs:,.0f} jobs/s "
        f"(max_jobs 50, poll 10 ms) → ratio {ours / theirs:.2f}"
    )
    print(f"Redis memory per queued job (small payload): {per_job:,.0f} B (job hash {one_hash} B)")
    figures = {
        "botsysNoopJobsPerS": ours,
        "arqNoopJobsPerS": theirs,
        "jobs": args.jobs,
        "redisBytesPerQueuedJob": per_job,
        "jobHashBytes": one_hash,
    }
    record("compare", figures)
    return figures


if __name__ == "__main__":
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--jobs", type=int, default=20000)
    asyncio.run(main(p.parse_args()))
