"""POST /invoke and GET /job/{id}, throughput and latency: the real `python -m botsys serve`
against a bare aiohttp handler doing the same JSON parse plus one Redis call (POST: EVALSHA of
HSET + ZADD; GET: HGETALL), measured in the same run, at the same concurrency, on the same
private redis-server.

    .venv/bin/python bench/api.py [--seconds 5] [--rounds 3] [--concurrency 64] [--generators python,wrk]

serve runs with the rate limit and the admission caps off and every bot type's limit at 0
(jobs are queued, nothing runs), so the figure is the API path alone: middlewares,
validation, the enqueue script.
Both servers run in their own processes. Two load generators take turns: aiohttp client
workers in this process (Python: itself CPU-bound on 2 cores, so it flatters the slower
server) and wrk (C; bench/api.lua posts the body), skipped with a note when wrk is not
installed. Prints requests/s, p50, p99 and each server's CPU time per request (from /proc),
and the ratios serve / bare per generator and route (targets: POST ≥ 0.50 with the Python
generator, ≥ 0.60 with wrk). On a busy machine the CPU ratio is the steadier figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import record  # noqa: E402
from tests.support.redis_server import RedisServer, free_port  # noqa: E402

WRK = shutil.which("wrk")
WRK_SCRIPT = Path(__file__).with_name("api.lua")
TARGETS = {("python", "POST /invoke"): 0.5, ("wrk", "POST /invoke"): 0.6}
BODY = {"botType": "python", "bot": "hello", "payload": {"numbers": [1, 2, 3]}, "priority": 2}

BARE = r"""
import json, sys, uuid
from aiohttp import web
from redis.asyncio import Redis
LUA = "redis.call('HSET', KEYS[1], 'body', ARGV[1]); redis.call('ZADD', KEYS[2], ARGV[2], KEYS[1]); return 1"
async def make():
    r = Redis.from_url(sys.argv[1], decode_responses=True)
    script = r.register_script(LUA)
    n = [0]
    async def invoke(request):
        body = await request.json()
        n[0] += 1
        job = f"bare:{uuid.uuid4().hex}"
        await script(keys=[job, "bare:queue"], args=[json.dumps(body), n[0]])
        return web.json_response({"jobId": job, "status": "queued"}, status=202)
    async def get_job(request):
        job = await r.hgetall(request.match_info["id"])
        if not job:
            raise web.HTTPNotFound()
        return web.json_response({"jobId": request.match_info["id"], **job})
    app = web.Application()
    app.router.add_post("/invoke", invoke)
    app.router.add_get("/job/{id}", get_job)
    return app
try:
    import uvloop; uvloop.install()
except ImportError:
    pass
web.run_app(make(), host="127.0.0.1", port=int(sys.argv[2]), access_log=None, print=None)
"""


# No admission caps: a full run posts well over engine.max_queued (50,000) jobs, and the
# 429s past it would be cheaper requests than the bare handler's writes.
UNCAPPED = "[engine]\nmax_queued = 0\nmax_queued_bytes = 0\n"


def start_serve(redis_url: str, port: int, config: Path) -> subprocess.Popen:
    config.write_text(UNCAPPED)
    env = dict(os.environ)
    env.update(
        BOTSYS_CONFIG=str(config),
        REDIS_URL=redis_url,
        API_GATEWAY_PORT=str(port),
        BOTSYS_REDIS_PREFIX=f"bench{port}",
        BOTSYS_RATE_LIMIT="0",
        MAX_PYTHON_BOTS="0",
        MAX_NODE_BOTS="0",
        MAX_JAVA_BOTS="0",
        BOTSYS_LOG_LEVEL="WARNING",
        BOTSYS_DRAIN_TIMEOUT="1",
        BOTSYS_BOT_USER="",  # runs no bot: no bot user to check the checkout's folders for
    )
    env.pop("BOTSYS_API_KEYS", None)
    return subprocess.Popen(
        [sys.executable, "-m", "botsys", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_up(url: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            try:
                async with s.post(url, json=BODY) as r:
                    if r.status in (200, 202):
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@dataclass(frozen=True)
class Target:
    method: str
    url: str
    body: dict | None
    status: int  # the status every answer must have
    pid: int  # the server's process, whose CPU time each request costs


Load = tuple[float, float, float, int, int]  # requests/s, p50 ms, p99 ms, errors, requests
Figures = tuple[float, float, float, int, float]  # ... errors, server CPU µs per request


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; nan elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def python_load(target: Target, seconds: float, concurrency: int) -> Load:
    """``concurrency`` aiohttp client workers in this process for ``seconds``."""
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        stop = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                async with session.request(target.method, target.url, json=target.body) as r:
                    await r.read()
                    if r.status != target.status:
                        errors += 1
                latencies.append(time.perf_counter() - t0)

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.monotonic() - started
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return len(latencies) / elapsed, p(0.50), p(0.99), errors, len(latencies)


async def wrk_load(target: Target, seconds: float, concurrency: int, threads: int) -> Load:
    """wrk (C, epoll) with bench/api.lua; any status >= 400 or socket error counts as an error."""
    env = {**os.environ, "BENCH_BODY": json.dumps(target.body) if target.body else ""}
    proc = await asyncio.create_subprocess_exec(
        WRK, f"-t{threads}", f"-c{concurrency}", f"-d{seconds:g}s", "-s", str(WRK_SCRIPT),
        target.url, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    line = next((x for x in out.decode().splitlines() if x.startswith("{")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.decode()[-500:]}")
    f = json.loads(line)
    rps = f["requests"] / (f["durationUs"] / 1e6)
    return rps, f["p50Us"] / 1e3, f["p99Us"] / 1e3, f["errors"], f["requests"]


async def first_job(url: str) -> str:
    """Queue one job on a server; its id is what the GET runs read."""
    async with aiohttp.ClientSession() as s, s.post(url + "/invoke", json=BODY) as r:
        return (await r.json())["jobId"]


async def targets(servers: dict[str, tuple[str, int]]) -> dict[str, dict[str, Target]]:
    """route → server name → what to load it with; ``servers``: name → (base URL, pid)."""
    routes: dict[str, dict[str, Target]] = {"POST /invoke": {}, "GET /job/{id}": {}}
    for name, (base, pid) in servers.items():
        await wait_up(base + "/invoke")
        routes["POST /invoke"][name] = Target("POST", base + "/invoke", BODY, 202, pid)
        job = await first_job(base)
        routes["GET /job/{id}"][name] = Target("GET", f"{base}/job/{job}", None, 200, pid)
    return routes


async def rounds(args, routes: dict[str, dict[str, Target]]) -> dict[tuple, list[Figures]]:
    """Every (generator, route, server) run, rounds interleaved: drift hits both servers."""
    generators = {"python": python_load} if "python" in args.generators else {}
    if "wrk" in args.generators:
        generators["wrk"] = lambda t, s, c: wrk_load(t, s, c, args.wrk_threads)
    for servers in routes.values():  # warm-up: connections, script cache
        for target in servers.values():
            await python_load(target, 1.0, args.concurrency)
    runs: dict[tuple, list[Figures]] = {}
    for _ in range(args.rounds):
        for gen, load in generators.items():
            for route, servers in routes.items():
                for name, target in servers.items():
                    cpu = cpu_seconds(target.pid)
                    *figures, requests = await load(target, args.seconds, args.concurrency)
                    cpu_us = (cpu_seconds(target.pid) - cpu) / max(1, requests) * 1e6
                    runs.setdefault((gen, route, name), []).append((*figures, cpu_us))
    return runs


async def measure(args, redis_url: str, tmp: Path) -> dict[tuple, list[Figures]]:
    serve_port, bare_port = free_port(), free_port()
    procs = [
        start_serve(redis_url, serve_port, tmp / "bench.toml"),
        subprocess.Popen([sys.executable, "-c", BARE, redis_url, str(bare_port)]),
    ]
    try:
        servers = {
            "serve": (f"http://127.0.0.1:{serve_port}", procs[0].pid),
            "bare": (f"http://127.0.0.1:{bare_port}", procs[1].pid),
        }
        return await rounds(args, await targets(servers))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)


def summary(runs: dict[tuple, list[Figures]], gen: str, route: str) -> dict:
    """Best round of each server, the best/best ratio and the median of the paired ratios."""
    serve, bare = runs[(gen, route, "serve")], runs[(gen, route, "bare")]
    best_serve, best_bare = max(serve), max(bare)
    paired = sorted(s[0] / b[0] for s, b in zip(serve, bare, strict=True))
    cpu = sorted(b[4] / s[4] for s, b in zip(serve, bare, strict=True))
    return {
        "servePerS": best_serve[0],
        "serveP50Ms": best_serve[1],
        "serveP99Ms": best_serve[2],
        "serveErrors": sum(r[3] for r in serve),
        "barePerS": best_bare[0],
        "bareP50Ms": best_bare[1],
        "bareP99Ms": best_bare[2],
        "bareErrors": sum(r[3] for r in bare),
        "ratio": best_serve[0] / best_bare[0],
        "ratioMedianOfRounds": statistics.median(paired),
        "ratioRange": [paired[0], paired[-1]],
        "serveCpuUsPerRequest": statistics.median(r[4] for r in serve),
        "bareCpuUsPerRequest": statistics.median(r[4] for r in bare),
        "cpuRatioMedianOfRounds": statistics.median(cpu),  # bare's CPU per request / serve's
        "cpuRatioRange": [cpu[0], cpu[-1]],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument(
        "--generators", default="python,wrk", help="load generators, comma-separated"
    )
    args = parser.parse_args()
    args.generators = set(args.generators.split(","))
    # A SIGTERM (a timeout, a killed run) unwinds like Ctrl-C: the servers and Redis stop too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if "wrk" in args.generators and WRK is None:
        print("note: wrk is not installed (apt-get install wrk): Python generator only")
        args.generators = {"python"}
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(Path(tmp)).start()
        try:
            runs = asyncio.run(measure(args, redis.url, Path(tmp)))
        finally:
            redis.kill()
    print(
        f"{args.concurrency} connections, best of {args.rounds} interleaved rounds of "
        f"{args.seconds:g} s per generator, route and server"
    )
    figures: dict = {"concurrency": args.concurrency}
    for gen, route in dict.fromkeys((g, r) for g, r, _ in runs):
        sums = summary(runs, gen, route)
        target = TARGETS.get((gen, route))
        print(f"{route}, {gen} generator")
        for name in ("serve", "bare"):
            best = max(runs[(gen, route, name)])
            print(
                f"  {name:6} {best[0]:8.0f} req/s   p50 {best[1]:6.2f} ms   p99 {best[2]:6.2f} ms"
                f"   errors {sums[name + 'Errors']}   CPU {sums[name + 'CpuUsPerRequest']:5.0f}"
                " µs/request (median)"
            )
        low, high = sums["ratioRange"]
        print(
            f"  ratio serve/bare: {sums['ratio']:.2f} best/best, {sums['ratioMedianOfRounds']:.2f}"
            f" median of rounds [{low:.2f}-{high:.2f}]"
            + (f" (target >= {target:.2f})" if target else "")
        )
        low, high = sums["cpuRatioRange"]
        print(
            f"  CPU per request bare/serve: {sums['cpuRatioMedianOfRounds']:.2f} median of rounds"
            f" [{low:.2f}-{high:.2f}] (wall-clock ratios swing with the machine's load; this less)"
        )
        figures[gen + ("Invoke" if route.startswith("POST") else "Get")] = sums
    figures.update(figures.get("pythonInvoke", {}))  # the long-standing top-level figures
    record("api", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
