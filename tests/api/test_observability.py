"""Metrics and logs after real jobs through the app: counts per status, the semaphore gauges
read from Redis, and JSON log lines that carry the job's id."""

from __future__ import annotations

import asyncio
import io
import json
import logging

from prometheus_client.parser import text_string_to_metric_families

from botsys.appkeys import QUEUE
from botsys.logs import setup_logging
from botsys.runners.types import AttemptOutcome
from tests.api.conftest import FakeRunner
from tests.support.job_events import wait_jobs


class GatedRunner(FakeRunner):
    """Fails jobs whose payload says so; holds others while ``gate`` is set."""

    async def run(self, spec, sink):
        if spec.payload.get("fail"):
            return AttemptOutcome("failed", error="planned")
        return await super().run(spec, sink)


def samples(text: str) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def invoke(client, **body):
    resp = await client.post("/invoke", json={"botType": "python", **body})
    assert resp.status == 202, await resp.text()
    return (await resp.json())["jobId"]


async def wait_state(client, job_id, states, timeout=10.0):
    """Until the job is in one of ``states`` (by its events channel); then its view."""
    await wait_jobs(client.app[QUEUE], [job_id], states, timeout=timeout)
    return await (await client.get(f"/job/{job_id}")).json()


async def test_metrics_after_real_jobs_and_semaphore_gauges_from_redis(make_client):
    runner = GatedRunner()
    client = await make_client(workers=True, runner=runner, **{"bot_types.python.limit": 1})
    done = [await invoke(client, payload={}) for _ in range(2)]
    failed = await invoke(client, payload={"fail": True})
    for job_id in (*done, failed):
        await wait_state(client, job_id, ("succeeded", "failed"))
    runner.gate = asyncio.Event()
    running = await invoke(client, payload={})
    await wait_state(client, running, ("running",))
    blocked = [await invoke(client, payload={}) for _ in range(3)]

    m = samples(await (await client.get("/metrics")).text())
    py = (("bot_type", "python"),)
    assert m[("bot_executions_total", (("bot_type", "python"), ("status", "succeeded")))] == 2
    assert m[("bot_executions_total", (("bot_type", "python"), ("status", "failed")))] == 1
    assert m[("semaphore_usage", py)] == 1 and m[("semaphore_limit", py)] == 1
    assert m[("semaphore_waiting", py)] == 3, "ready jobs blocked by the full semaphore"
    assert m[("queue_size", (("bot_type", "python"), ("state", "waiting")))] == 3
    assert m[("queue_size", (("bot_type", "python"), ("state", "running")))] == 1
    assert m[("job_wait_seconds_count", py)] == 4
    runner.gate.set()
    for job_id in blocked:
        await wait_state(client, job_id, ("succeeded",))


async def test_job_log_lines_are_json_and_carry_the_job_id(make_client):
    stream = io.StringIO()
    handler = setup_logging("INFO", "json", "test-replica", stream=stream)
    try:
        client = await make_client(workers=True, runner=GatedRunner())
        job_id = await invoke(client, payload={})
        await wait_state(client, job_id, ("succeeded",))
    finally:
        logging.getLogger().removeHandler(handler)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [r for r in records if r.get("job_id") == job_id]
    messages = [r["message"] for r in mine]
    assert any("started" in m for m in messages) and any("succeeded" in m for m in messages), (
        messages
    )
    assert all(r["bot_type"] == "python" and r["replica"] == "test-replica" for r in mine)
    assert {"time", "level", "logger", "message"} <= set(mine[0])
