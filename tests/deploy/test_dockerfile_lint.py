"""Dockerfile: hadolint with no warnings, plus the properties the deployment relies on."""

from __future__ import annotations

import json
import re

from .deploytools import ROOT, assert_ok, run, tool

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def test_hadolint_has_no_warnings() -> None:
    proc = run([tool("hadolint"), "--failure-threshold", "warning", "Dockerfile"])
    assert_ok(proc)


def test_hadolint_catches_problems(tmp_path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nADD . /app\nRUN pip install aiohttp\nCMD python app.py\n")
    proc = run([tool("hadolint"), "--format", "json", str(bad)])
    assert proc.returncode != 0
    codes = {finding["code"] for finding in json.loads(proc.stdout)}
    assert {"DL3007", "DL3020", "DL3025"} <= codes


def test_runtime_is_slim_non_root_and_exec_form() -> None:
    ins = instructions()
    froms = [arg for op, arg in ins if op == "FROM"]
    assert len(froms) == 3, "multi-stage: build (venv), launcher (launch.c), runtime"
    assert re.search(r"ARG PYTHON_IMAGE=python:3\.11-slim", DOCKERFILE.read_text())
    users = [arg for op, arg in ins if op == "USER"]
    assert users and not users[-1].startswith(("root", "0")), users
    entry = [arg for op, arg in ins if op == "ENTRYPOINT"][-1]
    cmd = [arg for op, arg in ins if op == "CMD"][-1]
    assert json.loads(entry) == ["/usr/bin/tini", "--"]
    assert json.loads(cmd) == ["python", "-m", "botsys", "serve", "--host", "0.0.0.0"]
    health = [arg for op, arg in ins if op == "HEALTHCHECK"]
    assert health and "/health" in health[0]


def test_image_has_the_runner_toolchains() -> None:
    text = DOCKERFILE.read_text()
    for package in ("nodejs", "openjdk-17-jdk-headless", "util-linux", "tini"):
        assert package in text


def test_image_copies_what_the_app_needs() -> None:
    copied = " ".join(arg for op, arg in instructions() if op == "COPY")
    # The compiled launcher sits next to its source, where launcher.py looks for it.
    assert "--from=launcher /src/botsys-launch botsys/runners/botsys-launch" in copied
    for path in ("botsys/", "pyproject.toml", "README.md"):  # botsys/ holds defaults and bots
        assert path in copied
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    for path in ("!botsys/", "!pyproject.toml", "!README.md"):
        assert path in ignore, f".dockerignore must let {path[1:]} through"
