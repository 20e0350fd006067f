"""Grafana dashboards: up to date, schema-valid, every query parses and uses real names.

PromQL is parsed by the real promtool (each expression becomes a recording rule). LogQL has no
parser on these machines: its stream selectors are checked against the labels Alloy produces.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from botsys.metrics import Metrics, TypeSnapshot, WebhookSnapshot, render

from .deploytools import OBS, ROOT, assert_ok, run, tool

GRAFANA = OBS / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
SCHEMA = Path(__file__).with_name("grafana-dashboard.schema.json")
ALLOY = OBS / "alloy" / "config.alloy"
SYNTHETIC = {"up"}  # written by Prometheus itself, per target
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                "and", "or", "unless", "offset", "inf", "nan"}  # fmt: skip
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "1m", "$__auto": "1m", "$__range": "1h"}


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def targets(board: dict, ds_type: str) -> list[str]:
    return [
        t["expr"]
        for p in board["panels"]
        for t in p.get("targets", [])
        if t.get("datasource", p.get("datasource", {})).get("type") == ds_type
    ]


def substitute(expr: str) -> str:
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    return re.sub(r"\$\{?\w+\}?", "x", expr)  # dashboard variables ($bot_type, ${search})


def all_promql() -> list[str]:
    return [e for path in DASHBOARDS for e in targets(load(path), "prometheus")]


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects: identifiers that are not functions or keywords."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    found = re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?!\w)(\s*\()?", e)
    return {m.group(1) for m in found if not m.group(2) and m.group(1) not in PROMQL_WORDS}


@pytest.fixture(scope="module")
def exported_names() -> set[str]:
    """Every sample name a botsys replica exports, after one observation of each kind."""
    m = Metrics(version="t", replica="r", bot_types=["python"])
    m.set_snapshot_provider(
        lambda: {"python": TypeSnapshot(1, 1, 1, 1)}, lambda: WebhookSnapshot(1, 1)
    )
    m.observe_execution("python", "succeeded", 1)
    m.observe_wait("python", 1)
    m.observe_delivery("delivered", 200, 1)
    m.observe_http("/jobs", "GET", 200, 1)
    body, _ = render(m)
    families = text_string_to_metric_families(body.decode())
    return {s.name for f in families for s in f.samples}


def test_dashboards_are_generated_from_the_builder(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "build_dashboards", GRAFANA / "build_dashboards.py"
    )
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    builder.main(tmp_path)
    for path in DASHBOARDS:
        assert (tmp_path / path.name).read_text() == path.read_text(), (
            f"{path.name} is stale: run python observability/grafana/build_dashboards.py"
        )
    assert {p.name for p in DASHBOARDS} == {p.name for p in tmp_path.iterdir()}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_matches_grafana_schema(path: Path) -> None:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    errors = [
        f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(load(path))
    ]
    assert not errors, errors


def test_schema_catches_a_broken_dashboard() -> None:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    broken = load(DASHBOARDS[0])
    broken["graphTooltip"] = 7
    del broken["schemaVersion"]
    assert len(list(validator.iter_errors(broken))) == 2


def test_dashboard_titles_and_uids() -> None:
    boards = {load(p)["title"]: load(p) for p in DASHBOARDS}
    assert set(boards) == {"Bot System Metrics", "Bot System Logs"}
    assert boards["Bot System Logs"]["uid"] == "bot-logs"
    assert len({b["uid"] for b in boards.values()}) == 2


def test_every_promql_expression_parses(tmp_path: Path) -> None:
    exprs = all_promql()
    assert len(exprs) > 20
    rules = [{"record": f"dashboard:expr_{i}", "expr": substitute(e)} for i, e in enumerate(exprs)]
    rule_file = tmp_path / "dashboard-rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    proc = run([tool("promtool"), "check", "rules", str(rule_file)])
    assert_ok(proc)
    assert f"SUCCESS: {len(exprs)} rules found" in proc.stdout


def test_promtool_rejects_a_broken_expression(tmp_path: Path) -> None:
    rule_file = tmp_path / "bad.yml"
    bad = {"record": "x:y", "expr": "rate(bot_executions_total[1m)"}
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [bad]}]}))
    assert run([tool("promtool"), "check", "rules", str(rule_file)]).returncode != 0


def test_metric_name_extraction() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, bot_type) (rate(job_wait_seconds_bucket"
        '{bot_type=~"a|b"}[5m]))) / on (x) max(up{job="botsys"}) offset 5m'
    )
    assert metric_names(expr) == {"job_wait_seconds_bucket", "up"}


def test_every_metric_used_is_exported(exported_names: set[str]) -> None:
    alerts = yaml.safe_load((OBS / "prometheus" / "alerts.yml").read_text())
    alert_exprs = [r["expr"] for g in alerts["groups"] for r in g["rules"]]
    used = {n for e in all_promql() + alert_exprs for n in metric_names(substitute(e))}
    unknown = used - exported_names - SYNTHETIC
    assert not unknown, f"queried but never exported by botsys.metrics: {sorted(unknown)}"
    assert {"queue_size", "semaphore_waiting", "job_wait_seconds_bucket"} <= used


def test_job_labels_match_scrape_jobs() -> None:
    prom = yaml.safe_load((OBS / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"] for j in prom["scrape_configs"]}
    used = {j for e in all_promql() for j in re.findall(r'job="([^"]+)"', e)}
    assert used and used <= jobs


def alloy_labels() -> set[str]:
    text = ALLOY.read_text()
    labels = set(re.findall(r'target_label\s*=\s*"(\w+)"', text))
    block = re.search(r"stage\.labels\s*\{\s*values\s*=\s*\{(.*?)\}", text, re.S)
    assert block, "stage.labels block not found in config.alloy"
    labels |= set(re.findall(r"(\w+)\s*=", block.group(1)))
    return labels


def test_alloy_label_set_is_bounded() -> None:
    labels = alloy_labels()
    assert labels == {
        "service",
        "container",
        "stream",
        "level",
        "bot_type",
        "container_name",  # the original system's names (docs/MIGRATING.md)
        "service_name",
    }
    assert "job_id" not in labels  # structured metadata, not an index label


# The original system's README queries (docs/MIGRATING.md promises they still match).
ORIGINAL_QUERIES = (
    '{container_name=~".+"}',
    '{container_name=~".+"} |~ "(?i)(error|exception|fail)"',
    'sum by (service_name) (count_over_time({container_name=~".+"} [1m]))',
)


def test_the_original_systems_log_queries_still_match() -> None:
    labels = alloy_labels()
    for query in ORIGINAL_QUERIES:
        for name in re.findall(r"(\w+)\s*=~", query) + re.findall(r"by \((\w+)\)", query):
            assert name in labels, f"{query}: {name!r} is not produced by config.alloy"
    rules = re.findall(
        r'source_labels\s*=\s*\["(\w+)"\][^}]*?target_label\s*=\s*"(\w+)"', ALLOY.read_text()
    )
    sources = {target: source for source, target in rules}
    assert sources["container_name"] == sources["container"]  # same values: no new streams
    assert sources["service_name"] == sources["service"]


def test_logql_uses_only_labels_alloy_produces() -> None:
    labels = alloy_labels()
    services = set(yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"])
    board = load(GRAFANA / "dashboards" / "bot-system-logs.json")
    exprs = targets(board, "loki")
    assert len(exprs) >= 6
    for expr in exprs:
        selectors = re.findall(r"\{([^}]*)\}", expr)
        assert selectors, expr
        for selector in selectors:
            matchers = re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', selector)
            assert matchers, expr
            for name, op, value in matchers:
                assert name in labels, f"{expr}: label {name!r} is not produced by config.alloy"
                if name == "service" and op == "=":
                    assert value in services, f"{expr}: no compose service {value!r}"
    variables = board["templating"]["list"]
    assert all(v["query"]["label"] in labels for v in variables if v["type"] == "query")


def strip_alloy(text: str) -> str:
    """Alloy source with // comments removed and string contents blanked (a tiny scanner)."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("//", i):
            i = text.find("\n", i) if "\n" in text[i:] else n
        elif text[i] == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            assert j < n, f"unterminated string at offset {i}"
            out.append('""')
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def test_alloy_config_structure() -> None:
    """Not the real `alloy validate` (no binary exists here): balance and references only."""
    original = ALLOY.read_text()
    text = strip_alloy(original)
    assert text.count("{") == text.count("}")
    assert text.count("[") == text.count("]")
    declared = {
        f"{kind}.{name}"
        for kind, name in re.findall(r'^\s*([a-z_]+\.[a-z_.]+)\s+"(\w+)"\s*\{', original, re.M)
    }
    refs = re.findall(r"=\s*\[?\s*([a-z_]+\.[a-z_]+\.\w+)\.(?:targets|rules|receiver)", text)
    assert refs and set(refs) <= declared, set(refs) - declared
    assert '"com.docker.compose.project=botsys"' in original
    assert "http://loki:3100/loki/api/v1/push" in original


def test_datasources_unique_and_referenced() -> None:
    doc = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "datasources.yml").read_text())
    sources = doc["datasources"]
    assert len({s["name"] for s in sources}) == len(sources)
    assert len({s["uid"] for s in sources}) == len(sources)
    uids = {s["uid"]: s["type"] for s in sources}
    for path in DASHBOARDS:
        for p in load(path)["panels"]:
            for ref in [p["datasource"], *(t["datasource"] for t in p["targets"])]:
                assert uids.get(ref["uid"]) == ref["type"], f"{path.name}: {ref}"


def test_dashboard_provider_path_matches_compose_mount() -> None:
    doc = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "dashboards.yml").read_text())
    path = doc["providers"][0]["options"]["path"]
    compose = (ROOT / "docker-compose.yml").read_text()
    assert f"./observability/grafana/dashboards:{path}:ro" in compose


def test_loki_keeps_logs_for_a_bounded_time() -> None:
    loki = yaml.safe_load((OBS / "loki" / "config.yaml").read_text())
    assert loki["limits_config"]["retention_period"] == "168h"
    assert loki["compactor"]["retention_enabled"] is True
    assert loki["compactor"]["delete_request_store"] == "filesystem"
    # Alloy sends job_id as structured metadata: needs schema v13 and the limit switched on.
    assert loki["limits_config"]["allow_structured_metadata"] is True
    assert loki["schema_config"]["configs"][-1]["schema"] == "v13"
