"""Shared by the benchmarks: a private redis-server, timing helpers, result recording."""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

RESULTS = Path(os.environ.get("BENCH_RESULTS") or Path(__file__).with_name("results.json"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def redis_server(aof: bool = False):
    """A throwaway redis-server on a free loopback port; yields its URL."""
    binary = shutil.which("redis-server")
    if not binary:
        raise SystemExit("redis-server is not installed (./scripts/test.sh installs it)")
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        args = [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            d,
            "--save",
            "",
            "--appendonly",
            "yes" if aof else "no",
            "--daemonize",
            "no",
        ]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            import redis

            client = redis.Redis(port=port)
            for _ in range(500):
                try:
                    client.ping()
                    break
                except redis.exceptions.ConnectionError:
                    time.sleep(0.01)
            client.close()
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.kill()
            proc.wait()


def pct(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    idx = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[idx]


def median(values):
    return statistics.median(values) if values else float("nan")


def record(name: str, figures: dict) -> None:
    """Merge one benchmark's figures into bench/results.json."""
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[name] = {**figures, "measuredAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")


def ratio_line(label: str, value: float, baseline: float, unit: str, base_label: str) -> str:
    r = value / baseline if baseline else float("nan")
    return f"{label}: {value:,.0f} {unit} vs {base_label} {baseline:,.0f} {unit} → ratio {r:.2f}"
