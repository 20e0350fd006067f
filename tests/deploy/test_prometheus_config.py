"""Prometheus: promtool on the shipped config and alerts, and a real server scraping Metrics."""

from __future__ import annotations

import asyncio

import yaml
from aiohttp import web

from botsys.metrics import Metrics, TypeSnapshot, make_handler

from .deploytools import OBS, assert_ok, run, tool

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
