"""Case 8: one Idempotency-Key posted 10 times at once across 3 replicas."""

from __future__ import annotations

import threading
import uuid

import pytest

from tests.support.procs import http

from .probes import starts_per_job

pytestmark = [pytest.mark.faults]


def test_concurrent_posts_with_one_key_make_one_job_and_one_execution(env):
    replicas = env.start()
    key = uuid.uuid4().hex
    body = {"botType": "python", "bot": "fault_probe", "payload": env.payload(100)}
    barrier = threading.Barrier(10)
    replies: list[tuple[int, dict]] = []

    def post(i: int) -> None:
        barrier.wait()
        status, reply, _ = http(
            "POST", replicas[i % 3].url + "/invoke", body, headers={"Idempotency-Key": key}
        )
        replies.append((status, reply))

    threads = [threading.Thread(target=post, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    ids = {r.get("jobId") for _, r in replies}
    statuses = sorted(s for s, _ in replies)
    assert len(replies) == 10 and set(statuses) <= {200, 202}, statuses
    assert len(ids) == 1, f"{len(ids)} job ids for one key: {ids}"
    [job_id] = ids
    env.wait_terminal([job_id], 30)
    created = env.redis.zcard(env.keys.jobs("python"))
    starts = starts_per_job(env.runs())
    assert created == 1, f"{created} jobs created"
    assert starts == {job_id: 1}, f"executions {starts}"
    print(
        f"idempotency: 10 concurrent POSTs on 3 replicas → statuses {statuses}, 1 job id, "
        f"{created} job, {starts[job_id]} execution"
    )
