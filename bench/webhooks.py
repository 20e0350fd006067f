"""Webhook delivery throughput: the dispatcher (in-memory store, signing, SSRF guard, capped
reads, attempt records) against a bare aiohttp client at the same concurrency to the same
local sink, in the same run. Prints deliveries/s, client CPU per delivery, and the ratios.

Two baselines: "bare" posts the body with one header; "bare-same-request" posts exactly the
requests the dispatcher puts on the wire (the same nine headers, signatures computed before
the clock starts). The target ratio is against the latter: it isolates what the dispatcher
adds (scheduling, signing at send time, deadlines, per-host admission, attempt records)
from what HTTP costs for those headers.

Fan-out: the same n deliveries as a job-event fan-out to 3 subscribed endpoints (each its
own URL and signing secret, X-Event-Type), against a bare client sending exactly those
requests ("bare-fanout"); target >= 0.80 too. With --shared-health a private redis-server
holds the endpoints' throttles and breakers as in a deployment (endpoint_health.py:
"dispatcher-fanout-shared", the same ratio against bare-fanout).

    .venv/bin/python bench/webhooks.py [--n 5000] [--concurrency 50] [--rounds 3]
                                       [--shared-health]

The sink runs in its own process so its CPU is not charged to either client. Wall-clock
rates move with whatever else the machine runs; the CPU-per-delivery figure does not.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing
import sys
import time
from collections import deque
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import record, redis_server, run_like_serve  # noqa: E402
from botsys.config import WebhookSettings  # noqa: E402
from botsys.webhooks.dispatcher import WebhookDispatcher  # noqa: E402
from botsys.webhooks.rotation import Keyring  # noqa: E402
from botsys.webhooks.sender import Sender  # noqa: E402
from botsys.webhooks.types import Delivery  # noqa: E402

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
Rate = tuple[float, float]  # (deliveries per wall second, client CPU µs per delivery)


def body(i: int) -> bytes:
    """~1 KB JSON, like a job result webhook."""
    payload = {"jobId": f"python-{i}", "botType": "python", "state": "succeeded", "success": True}
    payload["result"] = {"rows": [{"n": n, "label": f"row-{n}"} for n in range(40)]}
    return json.dumps(payload).encode()[:1024]


# -- sink (separate process) ------------------------------------------------------------------


def _sink(port_queue) -> None:
    from aiohttp import web

    async def ok(request):
        await request.read()
        return web.Response(text="ok")

    async def main():
        app = web.Application()
        app.router.add_post("/{tail:.*}", ok)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port_queue.put(site._server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    run_like_serve(main())


# -- the two clients -------------------------------------------------------------------------


class MemoryStore:
    """The DeliveryStore contract at memory speed: what's left is the dispatcher's own cost."""

    def __init__(self, deliveries: list[Delivery]) -> None:
        self.due = deque(deliveries)
        self.left = len(deliveries)
        self.done = asyncio.Event()

    async def claim_due(self, limit: int) -> list[Delivery]:
        n = min(limit, len(self.due))
        return [self.due.popleft() for _ in range(n)]

    async def finish_attempt(self, delivery, record, next_attempt_at_ms) -> bool:
        if record.outcome != "delivered":
            raise RuntimeError(f"bench delivery failed: {record}")
        self.left -= 1
        if self.left == 0:
            self.done.set()
        return True

    async def release(self, delivery, delay_ms) -> bool:
        self.due.append(delivery)
        return True

    async def wait_for_work(self, timeout_s: float) -> None:
        await asyncio.sleep(min(timeout_s, 0.001))


def _rates(n: int, started: float, cpu: float) -> Rate:
    wall = time.perf_counter() - started
    return n / wall, (time.process_time() - cpu) / n * 1e6


ENDPOINTS = 3
ENDPOINT_KEYRINGS = {
    f"ep_{n}": Keyring.single("whsec_" + base64.b64encode(bytes([n + 1]) * 32).decode())
    for n in range(ENDPOINTS)
}


def deliveries(url: str, bodies: list[bytes], fan_out: bool = False) -> list[Delivery]:
    """One webhook per job; or (fan_out) each job event to one of 3 subscribed endpoints."""
    if not fan_out:
        return [
            Delivery(f"msg_{i}", f"python-{i}", "python", url, b, 1, 5, f"t{i}")
            for i, b in enumerate(bodies)
        ]
    return [
        Delivery(
            f"msg_python-{i}_ep_{i % ENDPOINTS}",
            f"python-{i}",
            "python",
            f"{url}/ep{i % ENDPOINTS}",
            b,
            1,
            5,
            f"t{i}",
            event_type="job.succeeded",
            endpoint=f"ep_{i % ENDPOINTS}",
        )
        for i, b in enumerate(bodies)
    ]


def same_requests(
    url: str, bodies: list[bytes], fan_out: bool = False
) -> list[tuple[str, bytes, dict[str, str]]]:
    """The dispatcher's exact requests, signed up front (outside the timed part)."""
    sender = Sender(None, secret=SECRET, endpoint_keyring=ENDPOINT_KEYRINGS.get)
    now = int(time.time())
    return [(d.url, d.body, sender.headers(d, now)) for d in deliveries(url, bodies, fan_out)]


async def bare(requests: list[tuple[str, bytes, dict[str, str]]], concurrency: int) -> Rate:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        queue = deque(requests)

        async def worker():
            while queue:
                url, data, headers = queue.popleft()
                async with session.post(url, data=data, headers=headers) as resp:
                    await resp.read()
                    assert resp.status == 200

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return _rates(len(requests), started, cpu)


def settings_for(concurrency: int, secret: str) -> WebhookSettings:
    return WebhookSettings(
        concurrency=concurrency, per_host=concurrency, allow=["127.0.0.1"], secret=secret
    )


async def dispatched(
    url: str,
    bodies: list[bytes],
    concurrency: int,
    secret: str,
    fan_out: bool = False,
    health=None,
) -> Rate:
    """``health``: the endpoints' throttles and breakers (None: the dispatcher's own)."""
    store = MemoryStore(deliveries(url, bodies, fan_out))
    settings = settings_for(concurrency, secret)
    dispatcher = WebhookDispatcher(
        store, settings, endpoint_keyring=ENDPOINT_KEYRINGS.get, health=health
    )
    started, cpu = time.perf_counter(), time.process_time()
    task = asyncio.create_task(dispatcher.run())
    await store.done.wait()
    rates = _rates(len(bodies), started, cpu)
    await dispatcher.stop(grace_s=1)
    await task
    return rates


async def run(args, port: int, redis_url: str | None = None) -> None:
    shared = None
    if redis_url:
        from redis.asyncio import Redis

        from botsys.endpoint_health import SharedHealth
        from botsys.store.connection import Store

        client = Redis.from_url(redis_url, decode_responses=True)
        shared = SharedHealth(Store(client, False, "bench"), settings_for(args.concurrency, SECRET))
    url = f"http://127.0.0.1:{port}/hook"
    bodies = [body(i) for i in range(args.n)]
    minimal = [(url, b, {"Content-Type": "application/json"}) for b in bodies]
    same = same_requests(url, bodies)
    same_fanout = same_requests(url, bodies, fan_out=True)
    await bare(minimal[:500], args.concurrency)  # warm up both sides
    await dispatched(url, bodies[:500], args.concurrency, SECRET)
    names = ("bare", "bare-same-request", "dispatcher", "dispatcher-unsigned")
    names += ("bare-fanout", "dispatcher-fanout")
    if shared is not None:
        names += ("dispatcher-fanout-shared",)
    results: dict[str, list[Rate]] = {name: [] for name in names}
    c = args.concurrency
    for _ in range(args.rounds):  # interleaved, so load changes hit every mode alike
        results["bare"].append(await bare(minimal, c))
        results["bare-same-request"].append(await bare(same, c))
        results["dispatcher"].append(await dispatched(url, bodies, c, SECRET))
        results["dispatcher-unsigned"].append(await dispatched(url, bodies, c, ""))
        results["bare-fanout"].append(await bare(same_fanout, c))
        results["dispatcher-fanout"].append(await dispatched(url, bodies, c, SECRET, True))
        if shared is not None:
            fan = await dispatched(url, bodies, c, SECRET, True, shared)
            results["dispatcher-fanout-shared"].append(fan)
    report(args, len(bodies[0]), results)


def report(args, size: int, results: dict[str, list[Rate]]) -> None:
    best = {k: max(r for r, _ in v) for k, v in results.items()}
    cpu = {k: min(c for _, c in v) for k, v in results.items()}

    def median_ratio(a: str, b: str) -> float:
        ratios = sorted(x[0] / y[0] for x, y in zip(results[a], results[b], strict=True))
        return ratios[len(ratios) // 2]

    print(f"n={args.n} concurrency={args.concurrency} rounds={args.rounds} body={size} B")
    for name, rates in results.items():
        shown = ", ".join(f"{r:,.0f}" for r, _ in rates)
        print(
            f"  {name:20s} best {best[name]:7,.0f} deliveries/s, client CPU "
            f"{cpu[name]:4.0f} µs/delivery  (rounds: {shown})"
        )
    ratio = best["dispatcher"] / best["bare-same-request"]
    print(
        f"  ratio dispatcher/bare-same-request: {ratio:.2f} best/best, "
        f"{median_ratio('dispatcher', 'bare-same-request'):.2f} median of rounds  (target >= 0.80)"
    )
    print(f"  ratio dispatcher/bare (one header): {best['dispatcher'] / best['bare']:.2f}")
    unsigned = best["dispatcher-unsigned"] / best["bare-same-request"]
    print(f"  ratio unsigned dispatcher/bare-same-request: {unsigned:.2f}")
    cpu_ratio = cpu["bare-same-request"] / cpu["dispatcher"]
    print(f"  CPU per delivery, bare-same-request/dispatcher: {cpu_ratio:.2f}")
    fanout = best["dispatcher-fanout"] / best["bare-fanout"]
    print(
        f"  ratio fan-out dispatcher/bare-fanout: {fanout:.2f} best/best, "
        f"{median_ratio('dispatcher-fanout', 'bare-fanout'):.2f} median of rounds  (target >= 0.80)"
    )
    if "dispatcher-fanout-shared" in best:
        shared = best["dispatcher-fanout-shared"] / best["bare-fanout"]
        print(
            f"  ratio fan-out with shared health/bare-fanout: {shared:.2f} best/best, "
            f"{median_ratio('dispatcher-fanout-shared', 'bare-fanout'):.2f} median of rounds"
        )
    record(
        "webhooks",
        {
            "dispatcherPerS": best["dispatcher"],
            "barePerS": best["bare-same-request"],
            "bareOneHeaderPerS": best["bare"],
            "ratio": ratio,
            "ratioMedianOfRounds": median_ratio("dispatcher", "bare-same-request"),
            "ratioVsOneHeader": best["dispatcher"] / best["bare"],
            "cpuRatioBareOverDispatcher": cpu_ratio,
            "fanoutPerS": best["dispatcher-fanout"],
            "fanoutRatio": fanout,
            "fanoutRatioMedianOfRounds": median_ratio("dispatcher-fanout", "bare-fanout"),
            "n": args.n,
            "concurrency": args.concurrency,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--shared-health",
        action="store_true",
        help="also the fan-out with endpoint health in a private redis-server",
    )
    args = parser.parse_args()
    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    sink = ctx.Process(target=_sink, args=(ports,), daemon=True)
    sink.start()
    try:
        with contextlib.ExitStack() as stack:
            url = stack.enter_context(redis_server()) if args.shared_health else None
            run_like_serve(run(args, ports.get(timeout=20), url))
    finally:
        sink.terminate()
        sink.join(5)


if __name__ == "__main__":
    main()
