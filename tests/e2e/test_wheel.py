"""The package as a user installs it: a wheel in a fresh venv, `serve` run from a folder far
from the repository, with no config file. Defaults and the bundled bots must come from the
wheel itself (a checkout's config.toml or bots/ folder cannot help)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.procs import ROOT, Proc, base_env, http, wait_for
from tests.support.redis_server import free_port

pytestmark = pytest.mark.e2e

# What a wheel is built from; a copy keeps build/ and *.egg-info out of the checkout.
SOURCES = ("pyproject.toml", "README.md", "botsys")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "botsys-launch")


def build_wheel(tmp: Path) -> Path:
    src, dist = tmp / "src", tmp / "dist"
    src.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, src / name, **({"ignore": SKIP} if copy is shutil.copytree else {}))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)])
    (wheel,) = dist.glob("botsys-*.whl")
    return wheel


def fresh_venv(tmp: Path, wheel: Path) -> Path:
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)])
    return python


def run(args: list[str]) -> None:
    done = subprocess.run(args, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{args[:4]} failed:\n{done.stdout}\n{done.stderr}"


def test_a_wheel_in_a_fresh_venv_serves_the_bundled_bots_from_any_folder(tmp_path):
    python = fresh_venv(tmp_path, build_wheel(tmp_path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = base_env(BOTSYS_RATE_LIMIT="0")  # base_env drops BOTSYS_CONFIG: defaults only
    env.pop("PYTHONPATH", None)  # the package must come from the venv, never the checkout
    port = free_port()
    server = Proc(
        [str(python), "-m", "botsys", "serve", "--port", str(port)],
        env,
        tmp_path / "serve.log",
        port,
        name="serve (wheel)",
        cwd=elsewhere,
    ).start()
    try:
        server.wait_http()
        jobs = {}
        for bot_type in ("python", "node", "java"):
            body = {"botType": bot_type, "bot": "hello", "payload": {"name": "wheel"}}
            status, reply, _ = http("POST", server.url + "/invoke", body)
            assert status == 202, reply
            jobs[bot_type] = reply["jobId"]
        for bot_type, job_id in jobs.items():
            job = wait_for(
                lambda job_id=job_id: _finished(server.url, job_id), 60, what=f"{bot_type} job"
            )
            assert job["state"] == "succeeded", (job, server.log())
        described = {t["botType"]: t for t in http("GET", server.url + "/bots")[1]["botTypes"]}
        assert set(described) == {"python", "node", "java"}
        assert "numbers" in described["python"]["docs"]["data_analysis"]["payload"]
    finally:
        server.stop()
    listing = subprocess.run(
        [str(python), "-m", "botsys", "bots"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    venv = python.parent.parent
    folder = listing.stdout.partition("bots folder: ")[2].splitlines()[0]
    # Inside the venv; or, when the bot user cannot enter it (a root server, a venv in pytest's
    # private tmp folder), the copy of them in the cache folder (runners/bundled.py).
    assert folder.startswith(f"{venv}/lib/") or "/botsys-cache/bundled/" in folder, listing
    assert sorted(p.name for p in Path(folder).iterdir()) == ["java", "node", "python"]


def _finished(url: str, job_id: str) -> dict | None:
    job = http("GET", f"{url}/job/{job_id}")[1]
    return job if job.get("state") in ("succeeded", "failed", "timed_out", "cancelled") else None
