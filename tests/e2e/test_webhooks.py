"""Durable webhook delivery across a receiver outage and a `serve` restart: nothing is lost."""

from __future__ import annotations

import signal

import pytest

from tests.support.procs import Cluster, Proc, base_env, http, wait_for, write_config
from tests.support.redis_server import RedisServer, free_port

pytestmark = pytest.mark.e2e

RETRYING = """
[webhooks]
max_retries = 30
retry_delay_ms = 200
max_delay_ms = 800
"""


def mock_on(tmp, port: int) -> Proc:
    import sys

    p = Proc(
        [sys.executable, "-m", "botsys", "mock-webhook", "--port", str(port)],
        base_env(),
        tmp / "mock.log",
        port,
        name="mock-webhook",
    ).start()
    p.wait_http()
    return p


def test_deliveries_survive_a_receiver_outage_and_a_serve_restart(tmp_path):
    redis = RedisServer(tmp_path / "redis", aof=True).start()
    cluster = Cluster(tmp_path, redis.url, write_config(tmp_path / "c.toml", RETRYING))
    mock = None
    try:
        receiver_port = free_port()  # nothing listens here yet: every attempt is refused
        a = cluster.add_replica("a")
        hook = f"http://127.0.0.1:{receiver_port}/hook"
        ids = []
        for i in range(6):
            status, reply, _ = http(
                "POST",
                a.url + "/invoke",
                {"botType": "python", "bot": "hello", "payload": {"i": i}, "webhookUrl": hook},
            )
            assert status == 202, reply
            ids.append(reply["jobId"])

        def attempts(job_id):
            return (http("GET", f"{a.url}/job/{job_id}")[1].get("webhook") or {}).get("attempts", 0)

        wait_for(lambda: all(attempts(i) >= 2 for i in ids), 30, what="failed delivery attempts")
        a.signal(signal.SIGTERM)
        assert a.proc.wait(20) == 0, a.log()

        mock = mock_on(tmp_path, receiver_port)
        b = cluster.add_replica("b")
        got = wait_for(
            lambda: (
                (r := http("GET", f"{mock.url}/webhooks?limit=100")[1])
                and {w["jobId"] for w in r["webhooks"]} >= set(ids)
                and r
            ),
            30,
            what="every delivery at the receiver",
        )
        by_job: dict[str, list] = {}
        for w in got["webhooks"]:
            by_job.setdefault(w["jobId"], []).append(w)
        for job_id in ids:
            copies = by_job[job_id]
            assert {c["webhookId"] for c in copies} == {f"msg_{job_id}"}, copies
            assert all(c["attempt"] >= 3 for c in copies), "attempts counted across the restart"
            view = http("GET", f"{b.url}/job/{job_id}")[1]["webhook"]
            wait_for(
                lambda j=job_id: (
                    http("GET", f"{b.url}/job/{j}")[1]["webhook"]["state"] == "delivered"
                ),
                10,
                what=f"{job_id} delivered",
            )
            assert view["url"] == hook
    finally:
        if mock:
            mock.stop()
        cluster.stop()
        redis.kill()
