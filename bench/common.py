"""Shared by the benchmarks: a private redis-server, timing helpers, result recording."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from botsys.heap import settle_heap  # noqa: E402
from tests.support.redis_server import RedisServer, free_port  # noqa: E402, F401 (re-exported)

# Set by bench/run.py. A benchmark run on its own, often with smaller or partial arguments,
# only prints: its figures must not replace a full run's in bench/results.json.
RESULTS = Path(os.environ["BENCH_RESULTS"]) if os.environ.get("BENCH_RESULTS") else None


@contextmanager
def redis_server(aof: bool = False):
    """A throwaway redis-server on a free loopback port (the tests' own helper); yields its URL."""
    with tempfile.TemporaryDirectory() as d:
        server = RedisServer(Path(d), aof=aof).start()
        try:
            yield server.url
        finally:
            server.kill()


def pct(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    idx = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[idx]


def median(values):
    return statistics.median(values) if values else float("nan")


def record(name: str, figures: dict) -> None:
    """Merge one benchmark's figures into bench/results.json (only under bench/run.py)."""
    if RESULTS is None:
        print(f"(not recorded: `python -m bench {name}` updates bench/results.json)")
        return
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[name] = {**figures, "measuredAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")


def ratio_line(label: str, value: float, baseline: float, unit: str, base_label: str) -> str:
    r = value / baseline if baseline else float("nan")
    return f"{label}: {value:,.0f} {unit} vs {base_label} {baseline:,.0f} {unit} → ratio {r:.2f}"


def run_like_serve(coro):
    """Run ``coro`` on the event loop ``serve`` runs on (uvloop when installed), with its
    garbage-collector settings, so a figure and its baseline measure what a deployment gets."""
    settle_heap()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)
