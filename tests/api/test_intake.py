"""POST /invoke on a replica with room: the enqueue script leases the job to this replica and
its orchestrator starts it before the response is sent (intake.py: no wake-up, no claim)."""

from __future__ import annotations

from botsys.appkeys import QUEUE

from .conftest import FakeRunner


async def test_an_invoked_job_starts_before_the_response_without_a_claim(make_client):
    runner = FakeRunner()
    client = await make_client(workers=True, runner=runner)
    queue = client.app[QUEUE]
    claims, claim = [], queue.claim

    async def counted(bot_type, count, now=None):
        wait_ms, got = await claim(bot_type, count, now)
        claims.extend(c.job_id for c in got)
        return wait_ms, got

    queue.claim = counted
    reply = await client.post("/invoke", json={"botType": "python", "payload": {"n": 1}})
    job_id = (await reply.json())["jobId"]
    assert reply.status == 202 and runner.started == [job_id], "started before the response"
    assert job_id not in claims, "leased by the enqueue script, not claimed"


async def test_a_delayed_job_is_not_started_at_enqueue(make_client):
    runner = FakeRunner()
    client = await make_client(workers=True, runner=runner)
    reply = await client.post("/invoke", json={"botType": "python", "delay": 60000})
    assert reply.status == 202 and runner.started == []
