"""Chaos run (scripts/chaos.sh): a private redis-server (AOF), 3 replicas and the mock webhook
on loopback; a load loop posting jobs; a chaos loop that kill -9s and restarts replicas,
SIGTERMs them, kills client connections and kill -9s/restarts Redis. Prints a tally every
second; at the end waits for every accepted job and exits 1 if any was lost or stuck."""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import redis

from tests.faults.harness import TERMINAL, TYPES, FaultEnv
from tests.support.procs import http, start_mock_webhook


class Chaos:
    def __init__(self, env: FaultEnv, hook: str, seed: int) -> None:
        self.env, self.hook = env, hook
        self.rng = random.Random(seed)
        self.accepted: list[str] = []
        self.refused = 0  # POSTs never acknowledged (the client was told no): not lost
        self.events: list[str] = []
        self.redis_up = True
        self.halt = threading.Event()
        self.lock = threading.Lock()

    # -- load ----------------------------------------------------------------------------------

    def load(self, rate: float) -> None:
        while not self.halt.wait(1 / rate):
            t = self.rng.choice(TYPES)
            body = {
                "botType": t,
                "bot": "fault_probe",
                "payload": self.env.payload(self.rng.randint(50, 500)),
                "webhookUrl": self.hook,
            }
            headers = {"Idempotency-Key": uuid.uuid4().hex}
            for _ in range(5):  # a careful client: same key, another replica
                live = self.env.live_replicas()
                if not live:
                    time.sleep(0.2)
                    continue
                try:
                    status, reply, _ = http(
                        "POST", self.rng.choice(live).url + "/invoke", body, headers, timeout=3
                    )
                except OSError:
                    status = 0
                if status in (200, 202):
                    with self.lock:
                        self.accepted.append(reply["jobId"])
                    break
                time.sleep(0.2)
            else:
                self.refused += 1

    # -- chaos ---------------------------------------------------------------------------------

    def chaos(self) -> None:
        while not self.halt.wait(self.rng.uniform(2.0, 4.0)):
            action = self.rng.choice(["kill9", "kill9", "sigterm", "redis", "clientkill"])
            live = self.env.live_replicas()
            if action in ("kill9", "sigterm") and live:
                victim = self.rng.choice(live)
                sig = signal.SIGKILL if action == "kill9" else signal.SIGTERM
                victim.signal(sig)
                self.events.append(f"{sig.name} {victim.name}")
                victim.proc.wait(40)
                self.env.add_replica(victim.name, wait=False)
            elif action == "redis":
                self.env.redis_server.kill()
                self.redis_up = False
                self.events.append("kill -9 redis")
                self.halt.wait(self.rng.uniform(1.0, 3.0))
                self.env.redis_server.start()
                self.redis_up = True
                self.events.append("redis back (AOF)")
            elif action == "clientkill":
                client = redis.Redis.from_url(self.env.redis_server.url)
                try:
                    client.client_setname("chaos")
                    n = client.client_kill_filter(_type="normal", skipme=True)
                    self.events.append(f"CLIENT KILL x{n}")
                except redis.RedisError:
                    pass
                finally:
                    client.close()

    # -- tally ---------------------------------------------------------------------------------

    def tally(self) -> dict[str, int] | None:
        with self.lock:
            ids = list(self.accepted)
        try:
            jobs = self.env.jobs(ids)
        except redis.RedisError:
            return None
        states = [j.get("state") for j in jobs.values()]
        return {
            "accepted": len(ids),
            "finished": sum(s in TERMINAL for s in states),
            "lost": sum(s is None for s in states),
            "running": states.count("running"),
            "failed": states.count("failed"),
        }

    def line(self, t0: float) -> str:
        tally = self.tally()
        live = len(self.env.live_replicas())
        head = f"[{time.monotonic() - t0:5.1f}s]"
        if tally is None:
            return f"{head} redis down | replicas {live} | {self.events[-1:]}"
        return (
            f"{head} accepted {tally['accepted']:5d}  finished {tally['finished']:5d}  "
            f"lost {tally['lost']}  running {tally['running']:2d}  refused {self.refused}  "
            f"| replica processes {live}/3 "
            f"| {self.events[-1] if self.events else '-'}"
        )


def settle(env: FaultEnv, run: Chaos, drain_s: float) -> int:
    """Bring Redis and every replica back, wait for the backlog, print the summary."""
    if not run.redis_up:
        env.redis_server.start()
    live = {p.name for p in env.live_replicas()}
    for name in sorted({p.name for p in env.replicas} - live):
        env.add_replica(name, wait=False)
    print("chaos over: waiting for the backlog ...", flush=True)
    deadline = time.monotonic() + drain_s
    while time.monotonic() < deadline:
        tally = run.tally()
        if tally and tally["finished"] + tally["lost"] == tally["accepted"]:
            break
        time.sleep(1)
    tally = run.tally() or {}
    stuck = tally.get("accepted", 0) - tally.get("finished", 0) - tally.get("lost", 0)
    print(
        f"SUMMARY accepted {tally.get('accepted')}  finished {tally.get('finished')} "
        f"(failed {tally.get('failed')})  lost {tally.get('lost')}  stuck {stuck}  "
        f"refused {run.refused}  chaos events {len(run.events)}: " + ", ".join(run.events)
    )
    ok = tally.get("lost", 1) == 0 and stuck == 0
    print("RESULT", "OK: nothing lost" if ok else "FAIL: jobs lost or stuck")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--rate", type=float, default=15, help="jobs posted per second")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--drain", type=float, default=90, help="max wait for the backlog at the end")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="botsys-chaos-"))
    env = FaultEnv(tmp, tmp / "java-cache")
    mock = None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        env.start(3, overrides={"engine": {"max_stalls": 5}})
        mock = start_mock_webhook(tmp)
        print(
            f"chaos: seed {args.seed}, {args.seconds:.0f}s, redis :{env.redis_server.port}, "
            f"replicas {[p.port for p in env.replicas]}, mock webhook :{mock.port}, in {tmp}"
        )
        run = Chaos(env, mock.url + "/hook", args.seed)
        threads = [
            threading.Thread(target=run.load, args=(args.rate,), daemon=True),
            threading.Thread(target=run.chaos, daemon=True),
        ]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        while time.monotonic() - t0 < args.seconds:
            time.sleep(1)
            print(run.line(t0), flush=True)
        run.halt.set()
        for t in threads:
            t.join(60)
        return settle(env, run, args.drain)
    finally:
        if mock is not None:
            mock.stop()
        env.close()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
