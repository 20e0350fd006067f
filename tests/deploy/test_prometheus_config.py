"""Prometheus: promtool on the shipped config and alerts, and a real server scraping Metrics."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request

import yaml
from aiohttp import web

from botsys.metrics import Metrics, TypeSnapshot, make_handler

from .deploytools import OBS, ROOT, assert_ok, free_port, run, tool

PROM_DIR = OBS / "prometheus"


def test_promtool_check_config() -> None:
    # Also checks every rule file the config names (alerts.yml).
    proc = run([tool("promtool"), "check", "config", str(PROM_DIR / "prometheus.yml")])
    assert_ok(proc)
    assert "1 rule files found" in proc.stdout


def test_promtool_check_rules() -> None:
    assert_ok(run([tool("promtool"), "check", "rules", str(PROM_DIR / "alerts.yml")]))


def test_promtool_test_rules() -> None:
    proc = run([tool("promtool"), "test", "rules", "alerts.test.yml"], cwd=PROM_DIR)
    assert_ok(proc)
    assert "SUCCESS" in proc.stdout


def test_every_alert_has_a_promtool_test() -> None:
    alerts = {
        r["alert"]
        for g in yaml.safe_load((PROM_DIR / "alerts.yml").read_text())["groups"]
        for r in g["rules"]
    }
    cases = yaml.safe_load((PROM_DIR / "alerts.test.yml").read_text())["tests"]
    tested = {t["alertname"] for case in cases for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert alerts <= tested, f"alerts with no firing case in alerts.test.yml: {alerts - tested}"


def test_scrape_config_discovers_every_replica() -> None:
    config = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["botsys"]["dns_sd_configs"] == [
        {"names": ["botsys"], "type": "A", "port": 3000, "refresh_interval": "15s"}
    ]
    assert jobs["mock-webhook"]["static_configs"] == [{"targets": ["mock-webhook:5000"]}]


def metrics_app(replica: str) -> web.Application:
    metrics = Metrics(version="test", replica=replica, bot_types=["python"])
    metrics.observe_execution("python", "succeeded", 0.5)
    metrics.set_snapshot_provider(lambda: {"python": TypeSnapshot(2, 0, 1, 5)})
    app = web.Application()
    app.router.add_get("/metrics", make_handler(metrics))
    return app


async def test_real_prometheus_scrapes_two_replicas(aiohttp_server, prometheus) -> None:
    # Two live HTTP targets standing in for two `botsys serve` replicas.
    servers = [await aiohttp_server(metrics_app(f"r{i}"), host="127.0.0.1") for i in (1, 2)]
    targets = [f"127.0.0.1:{s.port}" for s in servers]
    prom = await asyncio.to_thread(prometheus, {"botsys": targets}, [PROM_DIR / "alerts.yml"])
    query = 'bot_executions_total{job="botsys", bot_type="python", status="succeeded"}'
    result = await asyncio.to_thread(prom.wait_for, query, 2)
    assert sorted(r["metric"]["instance"] for r in result) == sorted(targets)
    assert {r["value"][1] for r in result} == {"1"}
    up = await asyncio.to_thread(prom.query, 'sum(up{job="botsys"})')
    assert up[0]["value"][1] == "2"
    # The shipped alert rules load and evaluate against real data.
    rules = await asyncio.to_thread(prom.api, "/api/v1/rules")
    health = {r["name"]: r["health"] for g in rules["groups"] for r in g["rules"]}
    assert "BotsysReplicaDown" in health
    assert set(health.values()) <= {"ok", "unknown"}
    queue = await asyncio.to_thread(prom.wait_for, 'max(queue_size{state="waiting"})', 1)
    assert queue[0]["value"][1] == "2"


def start_serve(port: int, replica: str, redis_url: str, prefix: str, log) -> subprocess.Popen:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "BOTSYS_REPLICA": replica,
        "BOTSYS_REDIS_PREFIX": prefix,  # shared by both replicas, unused by other tests
        "BOTSYS_LOG_LEVEL": "WARNING",
    }
    cmd = [sys.executable, "-m", "botsys", "serve", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"botsys serve on {port} exited {proc.returncode}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"botsys serve on {port} not healthy after {timeout}s")


def test_real_prometheus_scrapes_two_serve_processes(redis_server, prometheus, tmp_path) -> None:
    # Two real `python -m botsys serve` replicas sharing one real redis-server.
    ports = [free_port(), free_port()]
    procs = []
    try:
        for i, port in enumerate(ports, start=1):
            log = (tmp_path / f"serve-{i}.log").open("w")
            prefix = f"deploy-{ports[0]}"
            procs.append(start_serve(port, f"replica-{i}", redis_server.url, prefix, log))
        for port, proc in zip(ports, procs, strict=True):
            wait_healthy(port, proc)
        prom = prometheus({"botsys": [f"127.0.0.1:{p}" for p in ports]})
        info = prom.wait_for('botsys_info{job="botsys"}', 2)
        assert sorted(r["metric"]["replica"] for r in info) == ["replica-1", "replica-2"]
        # Cluster-wide gauges: every replica reports the same value for the shared Redis.
        limits = prom.wait_for('semaphore_limit{bot_type="python"}', 2)
        assert {r["value"][1] for r in limits} == {"5"}
        executions = prom.query('bot_executions_total{bot_type="java", status="succeeded"}')
        assert len(executions) == 2
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
