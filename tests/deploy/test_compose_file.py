"""docker-compose.yml: validated by the real Compose v2, plus what Compose does not check."""

from __future__ import annotations

import json
import os
import re

import pytest

from .deploytools import ROOT, assert_ok, compose_cmd, run

ENV_EXAMPLE = ROOT / ".env.example"


REQUIRED_SECRETS = ("REDIS_PASSWORD", "BOTSYS_API_KEYS", "GRAFANA_ADMIN_PASSWORD")


def compose(*args: str, env_file=ENV_EXAMPLE):
    # --env-file .env.example: the example must hold every variable the file requires. The
    # shell's own values of the secrets would override the file's: leave them out.
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED_SECRETS}
    cmd = [*compose_cmd(), "--env-file", str(env_file), "-f", "docker-compose.yml", *args]
    return run(cmd, env=env)


@pytest.fixture(scope="module")
def config() -> dict:
    proc = compose("config", "--format", "json")
    assert_ok(proc)
    return json.loads(proc.stdout)


def test_compose_config_is_valid() -> None:
    proc = compose("version", "--short")
    assert_ok(proc)
    assert proc.stdout.strip().startswith("2."), proc.stdout
    assert_ok(compose("config", "--quiet"))


def test_the_compose_file_requires_exactly_these_secrets() -> None:
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", (ROOT / "docker-compose.yml").read_text()))
    assert required == set(REQUIRED_SECRETS)


@pytest.mark.parametrize("missing", REQUIRED_SECRETS)
def test_required_secrets_have_no_default(missing: str, tmp_path) -> None:
    # Without it the stack must refuse to start rather than run with a default password. One
    # secret missing at a time: with several missing, Compose names whichever it meets first,
    # and that order varies from run to run.
    kept = [
        line for line in ENV_EXAMPLE.read_text().splitlines() if not line.startswith(f"{missing}=")
    ]
    env_file = tmp_path / "env"
    env_file.write_text("\n".join(kept) + "\n")
    proc = compose("config", "--quiet", env_file=env_file)
    assert proc.returncode != 0
    assert f"required variable {missing} is missing a value" in proc.stderr, proc.stderr


def test_every_bind_mount_and_build_input_exists(config: dict) -> None:
    missing = []
    for name, svc in config["services"].items():
        for vol in svc.get("volumes", []):
            source = vol.get("source", "")
            # Host runtime sockets (the Docker socket for Alloy) are not project files.
            if vol["type"] == "bind" and source.startswith(str(ROOT)):
                if not (ROOT / source).exists():
                    missing.append(f"{name}: {source}")
        if "build" in svc:
            context = ROOT / svc["build"]["context"]
            dockerfile = context / svc["build"].get("dockerfile", "Dockerfile")
            for path in (context, dockerfile):
                if not path.exists():
                    missing.append(f"{name}: {path}")
    assert not missing, f"missing paths: {missing}"


def test_stack_shape(config: dict) -> None:
    services = config["services"]
    assert config["name"] == "botsys"
    assert set(services) >= {
        "redis", "botsys", "nginx", "mock-webhook", "prometheus", "grafana", "loki", "alloy"
    }  # fmt: skip
    assert services["botsys"]["deploy"]["replicas"] == 3
    assert "ports" not in services["botsys"], "clients reach the replicas through nginx only"
    assert [p["target"] for p in services["nginx"]["ports"]] == [80]
    assert services["nginx"]["ports"][0]["published"] == "3000"


def test_healthchecks_gate_startup(config: dict) -> None:
    services = config["services"]
    for name in ("redis", "nginx", "mock-webhook", "prometheus", "grafana"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    # botsys's healthcheck is the image's HEALTHCHECK (Dockerfile).
    assert services["botsys"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["nginx"]["depends_on"]["botsys"]["condition"] == "service_healthy"
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_redis_durability_and_auth(config: dict) -> None:
    redis = config["services"]["redis"]
    command = " ".join(redis["command"])
    for flag in ("--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction"):
        assert flag in command
    assert "requirepass" in command and "change-me" not in command  # the password is not argv
    env = config["services"]["botsys"]["environment"]
    assert env["REDIS_URL"] == "redis://:change-me-redis-password@redis:6379/0"
    assert any(v["target"] == "/data" for v in redis["volumes"]), "AOF must live on a volume"


def test_grafana_password_comes_from_env(config: dict) -> None:
    raw = (ROOT / "docker-compose.yml").read_text()
    assert re.search(r"GF_SECURITY_ADMIN_PASSWORD: \$\{GRAFANA_ADMIN_PASSWORD:\?", raw)
    env = config["services"]["grafana"]["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == "change-me-grafana-password"


def test_env_example_lists_every_variable() -> None:
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text()))
    lines = [ln for ln in ENV_EXAMPLE.read_text().splitlines() if ln and not ln.startswith("#")]
    declared = {ln.split("=", 1)[0] for ln in lines}
    assert used - declared == set(), "add these to .env.example"
    assert declared - used == set(), "unused variables in .env.example"
    values = [ln.split("=", 1)[1] for ln in lines]
    assert not [v for v in values if "#" in v], "compose reads a trailing comment as the value"


def test_observability_mounts_match_the_configs(config: dict) -> None:
    services = config["services"]
    prom_cmd = services["prometheus"]["command"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prom_cmd
    mounts = {v["target"]: v["source"] for v in services["prometheus"]["volumes"]}
    assert (ROOT / mounts["/etc/prometheus"] / "prometheus.yml").is_file()
    assert (ROOT / mounts["/etc/prometheus"] / "alerts.yml").is_file()
    grafana = {v["target"]: v["source"] for v in services["grafana"]["volumes"]}
    assert (ROOT / grafana["/var/lib/grafana/dashboards"]).samefile(
        ROOT / "observability/grafana/dashboards"
    )
