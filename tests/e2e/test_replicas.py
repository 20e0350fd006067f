"""End to end: real `python -m botsys serve` replicas on one real redis-server, real bot
subprocesses in three languages, and the real mock webhook."""

from __future__ import annotations

import gc
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from botsys.heap import FIRST_GENERATION_THRESHOLD
from botsys.states import TERMINAL
from tests.support.procs import Cluster, http, pid_alive, start_mock_webhook, wait_for, write_config
from tests.support.redis_server import RedisServer
from tests.support.timing import MARGIN_S

pytestmark = pytest.mark.e2e

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
LEASE_S = 2.0  # FAST_CONFIG's engine.lease_ms


@pytest.fixture
def redis(tmp_path):
    server = RedisServer(tmp_path / "redis", aof=True).start()
    yield server
    server.kill()


@pytest.fixture
def cluster(tmp_path, redis):
    c = Cluster(
        tmp_path,
        redis.url,
        write_config(tmp_path / "botsys.toml"),
        env_extra={"BOTSYS_WEBHOOK_SECRET": SECRET},
    )
    yield c
    c.stop()


def invoke(replica, **body):
    status, reply, _ = http("POST", replica.url + "/invoke", body)
    assert status == 202, reply
    return reply["jobId"]


def job(replica, job_id):
    status, reply, _ = http("GET", f"{replica.url}/job/{job_id}")
    assert status == 200, reply
    return reply


def wait_state(replica, job_id, states=TERMINAL, timeout=60.0):
    return wait_for(
        lambda: (j := job(replica, job_id))["state"] in states and j,
        timeout,
        what=f"{job_id} in {states}",
    )


def test_jobs_in_every_language_run_on_any_replica_and_deliver_signed_webhooks(cluster, tmp_path):
    mock = start_mock_webhook(tmp_path, BOTSYS_WEBHOOK_SECRET=SECRET)
    try:
        a, b = cluster.add_replica("a"), cluster.add_replica("b")
        hook = f"{mock.url}/hook"
        ids = {
            "python": invoke(
                a,
                botType="python",
                bot="data_analysis",
                payload={"numbers": [3, 1, 4, 1, 5]},
                webhookUrl=hook,
            ),
            "node": invoke(
                b, botType="node", payload={"durationMs": 50, "failureRate": 0}, webhookUrl=hook
            ),
            "java": invoke(
                a, botType="java", bot="batch_process", payload={"records": 3}, webhookUrl=hook
            ),
        }
        finals = {t: wait_state(b if t != "node" else a, i) for t, i in ids.items()}
        for t, final in finals.items():
            assert final["state"] == "succeeded", (t, final)
            assert final["progress"] == 100 and final["result"] is not None
        assert finals["python"]["result"]["mean"] == pytest.approx(2.8)
        got = wait_for(
            lambda: (
                (r := http("GET", f"{mock.url}/webhooks?limit=10")[1])
                and len(r["webhooks"]) >= 3
                and r
            ),
            30,
            what="3 webhooks",
        )
        by_job = {w["body"]["jobId"]: w for w in got["webhooks"]}
        assert set(by_job) == set(ids.values())
        for w in by_job.values():
            assert w["signature"]["valid"] is True, w
            assert w["headers"]["webhook-id"] == f"msg_{w['body']['jobId']}"
        # The mock has every webhook; the job records it once the sender has read the 200.
        for i in ids.values():
            webhook = wait_for(
                lambda i=i: (w := job(a, i)["webhook"])["state"] == "delivered" and w,
                10,
                what=f"{i}'s webhook recorded as delivered",
            )
            assert webhook["attempts"] == 1 and webhook["lastStatus"] == 200, webhook
    finally:
        mock.stop()


def test_cancel_on_one_replica_kills_the_bot_running_on_another(cluster):
    a = cluster.add_replica("a")
    job_id = invoke(a, botType="python", payload={"durationMs": 60000, "failureRate": 0})
    running = wait_state(a, job_id, states=("running",), timeout=20)
    assert running["replica"] == "a"
    [bot_pid] = wait_for(lambda: a.attempts(), 10, what="the bot process")
    b = cluster.add_replica("b")
    status, reply, _ = http("DELETE", f"{b.url}/job/{job_id}")
    assert status == 202, reply
    final = wait_state(b, job_id, timeout=10)
    assert final["state"] == "cancelled"
    wait_for(lambda: not pid_alive(bot_pid), 5, what=f"bot {bot_pid} to die")


def test_events_stream_from_another_replica(cluster):
    a, b = cluster.add_replica("a"), cluster.add_replica("b")
    events: list[dict] = []
    job_id = invoke(a, botType="python", payload={"durationMs": 400, "failureRate": 0}, priority=1)

    def follow():
        with urllib.request.urlopen(f"{b.url}/job/{job_id}/events", timeout=30) as resp:
            for raw in resp:
                line = raw.decode().strip()
                if line.startswith("data:"):
                    events.append(json.loads(line[5:]))

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    reader.join(30)
    assert not reader.is_alive(), "the stream ends after the terminal state"
    states = [e.get("state") for e in events if e.get("type") == "state"]
    progress = [e["progress"] for e in events if e.get("type") == "progress"]
    assert states[-1] == "succeeded", events
    assert progress == sorted(progress) and progress, events


def test_sigterm_lets_a_running_bot_finish_and_exits_zero(cluster):
    a = cluster.add_replica("a")
    job_id = invoke(a, botType="python", payload={"durationMs": 1500, "failureRate": 0})
    wait_state(a, job_id, states=("running",), timeout=20)
    t0 = time.monotonic()
    a.signal(signal.SIGTERM)
    code = a.proc.wait(20)
    took = time.monotonic() - t0
    b = cluster.add_replica("b")
    final = job(b, job_id)
    assert code == 0, a.log()
    assert final["state"] == "succeeded" and final["attempt"] == 1, final
    # It waited for its 1.5 s job (drain timeout 5 s), then left at once.
    assert took < 5.0, f"exited {took:.1f}s after SIGTERM: it waited out the drain timeout"


def test_short_drain_requeues_and_another_replica_finishes(cluster):
    a = cluster.add_replica("a", BOTSYS_DRAIN_TIMEOUT="0.3")
    job_id = invoke(a, botType="python", payload={"durationMs": 3000, "failureRate": 0})
    wait_state(a, job_id, states=("running",), timeout=20)
    [bot_pid] = wait_for(lambda: a.attempts(), 10, what="the bot process")
    a.signal(signal.SIGTERM)
    assert a.proc.wait(20) == 0, a.log()
    assert not pid_alive(bot_pid), "the drained bot was killed"
    b = cluster.add_replica("b")
    final = wait_state(b, job_id, timeout=30)
    assert final["state"] == "succeeded" and final["replica"] == "b"
    assert final["attempt"] == 1, f"no attempt charged for the drain: {final['attempt']}"


def test_kill_9_leaves_no_bot_alive_and_the_job_runs_elsewhere(cluster):
    a = cluster.add_replica("a")
    ids = [
        invoke(a, botType="python", payload={"durationMs": 20000, "failureRate": 0})
        for _ in range(3)
    ]
    wait_for(lambda: len(a.attempts()) == 3, 20, what="3 bots")
    bots = wait_for(lambda: len(d := a.descendants()) >= 6 and d, 5, what="launchers and bots")
    a.signal(signal.SIGKILL)
    a.proc.wait(5)
    t0 = time.monotonic()
    wait_for(lambda: not any(pid_alive(p) for p in bots), 5, interval=0.02, what="bots to die")
    died = time.monotonic() - t0
    b = cluster.add_replica("b", BOTSYS_DRAIN_TIMEOUT="0.5")
    status, _, _ = http(
        "POST", f"{b.url}/invoke", {"botType": "python", "payload": {"durationMs": 10}}
    )
    assert status == 202
    t1 = time.monotonic()
    for job_id in ids:
        wait_for(lambda j=job_id: job(b, j)["replica"] == "b", 10, what=f"{job_id} taken over by b")
    took_over = time.monotonic() - t1
    # Leases of 2 s: the bots die before theirs expire (so no re-run overlaps them), and b
    # takes the jobs over when they do.
    assert died < LEASE_S, f"bots outlived the replica by {died:.2f}s"
    assert took_over < LEASE_S + MARGIN_S, f"jobs taken over {took_over:.1f}s after b started"


def test_serve_freezes_its_startup_heap(cluster):
    # The GC settings of botsys/heap.py are applied by the real `serve`, after its startup.
    replica = cluster.add_replica()
    logged = [json.loads(line) for line in replica.log(tail=500).splitlines() if line[:1] == "{"]
    settled = [entry for entry in logged if entry["message"].startswith("heap settled")]
    assert len(settled) == 1, replica.log()
    # More frozen than a bare interpreter holds at all (its modules, the app, the clients),
    # and the first threshold above CPython's default, whatever heap.py settles on.
    bare = subprocess.run(
        [sys.executable, "-c", "import gc; gc.collect(); print(len(gc.get_objects()))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert settled[0]["frozen_objects"] > int(bare.stdout)
    assert settled[0]["gc_threshold"] == FIRST_GENERATION_THRESHOLD > gc.get_threshold()[0]
