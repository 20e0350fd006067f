"""End to end, 3 real `serve` replicas on one real redis-server: a bot type created at runtime
through one replica is used through another within a second, and a cadence holds across the
replicas (bot-side monotonic timestamps)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.procs import http, wait_for
from tests.support.timing import MARGIN_S

pytestmark = pytest.mark.e2e

BASE = "/admin/config/bot-types"
# A second (pub/sub; the 0.5 s re-read is the fallback), plus what a loaded machine adds.
WITHIN_S = 1.0 + MARGIN_S
# Prints when it started by this machine's monotonic clock (shared by every process here)
# and by the wall clock, to compare with the job's startedAt (Redis's clock, same machine).
STAMP_BOT = """\"\"\"stamp: when the bot started.\"\"\"
import json, sys, time
mono, wall = time.monotonic(), time.time()
envelope = json.load(sys.stdin)
print(json.dumps({"result": {"mono": mono, "wall": wall, "jobId": envelope["jobId"]}}))
"""


@pytest.fixture
def bots_dir(tmp_path) -> Path:
    folder = tmp_path / "stamp-bots"
    folder.mkdir()
    (folder / "stamp.py").write_text(STAMP_BOT)
    return folder


@pytest.fixture
def three(cluster):
    return [cluster.add_replica(f"r{i}") for i in range(3)]


def create_type(replica, **body):
    status, reply, headers = http("POST", replica.url + BASE, body)
    assert status == 201, reply
    return reply, headers


def invoke(replica, **body):
    status, reply, _ = http("POST", replica.url + "/invoke", body)
    assert status == 202, reply
    return reply["jobId"]


def finished(replica, job_id):
    status, reply, _ = http("GET", f"{replica.url}/job/{job_id}")
    assert status == 200, reply
    return reply if reply["state"] in ("succeeded", "failed", "timed_out", "cancelled") else None


def test_a_type_created_through_one_replica_is_used_through_another_within_a_second(
    three, bots_dir
):
    a, b, c = three
    view, headers = create_type(
        a, name="stamps", runtime="python", botsDir=str(bots_dir), bots=["stamp"], limit=2
    )
    created = time.monotonic()
    # B accepts jobs of the new type (pub/sub; the 0.5 s re-read is the fallback)...
    status = None
    while time.monotonic() - created < WITHIN_S and status != 202:
        status, reply, _ = http("POST", b.url + "/invoke", {"botType": "stamps"})
    accepted_after = time.monotonic() - created
    assert status == 202, reply
    assert accepted_after < WITHIN_S
    print(f"created through A, accepted by B after {accepted_after * 1000:.0f} ms")
    # ...and some replica runs it with the runtime's command and the type's own folder.
    done = wait_for(lambda: finished(c, reply["jobId"]), 30, what="the job")
    assert done["state"] == "succeeded", done
    assert done["bot"] == "stamp" and done["result"]["jobId"] == reply["jobId"]
    status, got, hdrs = http("GET", f"{c.url}{BASE}/stamps")
    assert status == 200 and got == view and hdrs["ETag"] == headers["ETag"]

    # Deleted through C: refused by A within a second, no job left in a queue.
    status, reply, _ = http("DELETE", f"{c.url}{BASE}/stamps")
    assert status == 200, reply
    gone = time.monotonic()
    wait_for(
        lambda: http("POST", a.url + "/invoke", {"botType": "stamps"})[0] == 422,
        WITHIN_S,
        what="A to refuse the deleted type",
    )
    assert time.monotonic() - gone < WITHIN_S


JOBS = 45  # 9 windows of 5: (45 - 5) / 5 * 2 s = 16 s from the first start to the last
CADENCE = {"max": 5, "intervalS": 2}


def test_a_cadence_holds_across_three_replicas(three, bots_dir):
    """The issue's check, shortened from 60 s to 16 s to keep the suite fast: 3 replicas,
    cadence 5 per 2 s, limit 10 (the semaphore never binds): no 2-second window holds more
    than 5 starts, and the throughput is the cadence."""
    a, b, c = three
    create_type(a, name="paced", runtime="python", botsDir=str(bots_dir), limit=10, cadence=CADENCE)
    # 10 s only bounds a hang (C learns of it like B does in the test above).
    wait_for(lambda: http("GET", f"{c.url}/queues/paced")[0] == 200, 10, what="C to know it")
    ids = [invoke(three[i % 3], botType="paced", bot="stamp") for i in range(JOBS)]
    done = [wait_for(lambda j=j: finished(a, j), 60, what=j) for j in ids]
    assert {d["state"] for d in done} == {"succeeded"}

    # Where the cadence is enforced (claim.lua, Redis time): exact.
    started_ms = sorted(_ms(d["startedAt"]) for d in done)
    assert all(started_ms[i + 5] - started_ms[i] >= 2000 for i in range(JOBS - 5))
    # Where the issue measures it: in the bots, by the machine's monotonic clock. A bot starts
    # a spawn after its claim; that delay varies between bots by at most `spread`.
    mono = sorted(d["result"]["mono"] for d in done)
    delays = [d["result"]["wall"] - _ms(d["startedAt"]) / 1000 for d in done]
    spread = max(delays) - min(delays)
    tightest = min(mono[i + 5] - mono[i] for i in range(JOBS - 5))
    assert tightest >= 2.0 - spread, (tightest, spread)
    print(f"tightest 6-start span {tightest:.3f} s; spawn delay spread {spread * 1000:.0f} ms")
    # Throughput equals the cadence: 40 starts after the first 5 take 8 windows of 2 s.
    span = mono[-1] - mono[0]
    # Up to twice the margin late: 45 spawns wait for a core on a loaded 2-core machine.
    assert 16.0 - spread <= span <= 16.0 + 2 * MARGIN_S, span
    assert len({d["replica"] for d in done}) >= 2, "the replicas shared the work"


def _ms(iso: str) -> int:
    from datetime import datetime

    return round(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)
