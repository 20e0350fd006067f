"""Case 8: one Idempotency-Key posted 10 times at once across 3 replicas."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from .probes import starts_per_job

pytestmark = [pytest.mark.faults]


def test_concurrent_posts_with_one_key_make_one_job_and_one_execution(env):
    replicas = env.start()
    key = uuid.uuid4().hex
    barrier = threading.Barrier(10)

    def post(i: int) -> str:
        barrier.wait()
        # 10 first POSTs at once may miss the 1 s store deadline (503): retried with the same
        # key, as a careful client does (FaultEnv.invoke); a 500 or a 4xx still fails.
        headers = {"Idempotency-Key": key}
        return env.invoke("python", 100, replica=replicas[i % 3], headers=headers)

    with ThreadPoolExecutor(10) as pool:
        ids = set(pool.map(post, range(10), timeout=60))
    retries = dict(env.invoke_retries)
    assert len(ids) == 1, f"{len(ids)} job ids for one key: {ids}"
    [job_id] = ids
    env.wait_terminal([job_id], 30)
    created = env.redis.zcard(env.keys.jobs("python"))
    starts = starts_per_job(env.runs())
    assert created == 1, f"{created} jobs created"
    assert starts == {job_id: 1}, f"executions {starts}"
    print(
        f"idempotency: 10 concurrent POSTs on 3 replicas → 1 job id, {created} job, "
        f"{starts[job_id]} execution; retried: {retries or 'none'}"
    )
