"""Every command in README.md and docs/*.md runs, and succeeds, against a live `serve` and mock
webhook; every request example of the OpenAPI document runs a job that succeeds.

A fenced ```bash or ```sh block is a command block. The blocks of one page run in order in one
bash (`set -euo pipefail`, so `JOB=...` in one block serves the next), with `curl` failing on
any HTTP error status. A block that must not run here (Docker, a script that runs forever, the
original system's commands) is preceded by a line `<!-- doc-test: skip (the reason) -->`.
The pages' addresses are the defaults (`localhost:3000`, `localhost:5000`, `.venv/bin/python`,
`python`); the test points them at its own server, mock and interpreter on free ports.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from botsys.states import TERMINAL
from tests.support.procs import ROOT, Proc, base_env, http, wait_for
from tests.support.redis_server import free_port

pytestmark = pytest.mark.e2e

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(?:bash|sh)\n(.*?)^```", re.M | re.S)
DESCRIPTION_FENCE = re.compile(r"^```\n(.*?)^```", re.M | re.S)  # OpenAPI: plain fences
SKIP = re.compile(r"<!--\s*doc-test:\s*skip\s*\((?P<why>[^)]+)\)\s*-->\s*$")
SECRET = "whsec_" + "ZG9jLXRlc3Qtc2VjcmV0LW9mLTMyLWJ5dGVzLSEhISE="


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    code: str
    skip: str  # the marker's reason, "" when the block runs


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = SKIP.search(before)
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(page.name, line, match.group(1), marker.group("why") if marker else ""))
    return found


@dataclass
class Live:
    api: Proc
    mock: Proc
    bin_dir: Path
    workdir: Path


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("doc-test")
    bin_dir = tmp / "bin"  # `python` and `python3` in the pages: this interpreter (its venv)
    bin_dir.mkdir()
    for name in ("python", "python3"):
        (bin_dir / name).write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        (bin_dir / name).chmod(0o755)
    mock_port = free_port()
    env = base_env(
        BOTSYS_WEBHOOK_SECRET=SECRET,
        BOTSYS_WEBHOOK_ALLOW=f"localhost:{mock_port}",
        BOTSYS_RATE_LIMIT="0",
        WEBHOOK_TIMEOUT="1",  # the mock's /test/timeout answers after this + 5 s
    )
    mock = Proc(
        [sys.executable, "-m", "botsys", "mock-webhook", "--port", str(mock_port)],
        env,
        tmp / "mock.log",
        mock_port,
        name="mock-webhook",
        cwd=tmp,
    ).start()
    api_port = free_port()
    api = Proc(
        [sys.executable, "-m", "botsys", "serve", "--port", str(api_port)],
        env,
        tmp / "serve.log",
        api_port,
        name="serve",
        cwd=tmp,
    ).start()
    try:
        mock.wait_http()
        api.wait_http()
        yield Live(api, mock, bin_dir, tmp)
    finally:
        api.stop()
        mock.stop()


def localize(code: str, live: Live) -> str:
    """The pages' default addresses → this test's server, mock and interpreter."""
    code = re.sub(r"\b(localhost|127\.0\.0\.1):3000\b", f"127.0.0.1:{live.api.port}", code)
    code = re.sub(r"\b(localhost|127\.0\.0\.1):5000\b", f"localhost:{live.mock.port}", code)
    return code.replace(".venv/bin/python", sys.executable)


PRELUDE = """\
set -euo pipefail
curl() { command curl --fail-with-body --max-time 60 "$@"; }
"""


def run_page(page: Path, live: Live) -> None:
    run_blocks([b for b in blocks(page) if not b.skip], live, page.name)


def run_blocks(runnable: list[Block], live: Live, name: str) -> None:
    """One bash for all ``runnable`` blocks, in order; a failure names the block."""
    script = [PRELUDE]
    for block in runnable:
        script.append(f"echo '>>> {block.page}:{block.line}' >&2\n{localize(block.code, live)}")
    env = base_env(
        PATH=f"{live.bin_dir}{os.pathsep}{os.environ['PATH']}",
        BOTSYS_URL=live.api.url,
    )
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=live.workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    ran = re.findall(r"^>>> (\S+)$", done.stderr, re.M)
    assert done.returncode == 0, (
        f"the block at {ran[-1] if ran else name} failed (exit {done.returncode}):\n"
        f"--- stdout (tail)\n{done.stdout[-3000:]}\n--- stderr (tail)\n{done.stderr[-3000:]}\n"
        f"--- serve\n{live.api.log(30)}"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_of_the_page_succeeds(page, live):
    if not [b for b in blocks(page) if not b.skip]:
        pytest.skip(f"{page.name} has no command blocks")
    run_page(page, live)


def test_every_skip_marker_names_a_reason_and_precedes_a_command_block():
    for page in PAGES:
        lines = page.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.lstrip().startswith("<!-- doc-test"):
                where = f"{page.name}:{i + 1}"
                assert SKIP.search(line), f"{where}: write <!-- doc-test: skip (why) -->"
                assert re.match(r"```(bash|sh)$", lines[i + 1]), f"{where}: no block follows"


def test_every_command_in_the_openapi_descriptions_succeeds(live):
    doc = http("GET", live.api.url + "/api-docs/swagger.json")[1]
    described = [("info", doc["info"].get("description", ""))] + [
        (f"{method.upper()}_{path}", op.get("description", ""))
        for path, item in doc["paths"].items()
        for method, op in item.items()
    ]
    runnable = [
        Block(where.replace(" ", ""), i, match.group(1), "")
        for where, text in described
        for i, match in enumerate(DESCRIPTION_FENCE.finditer(text), 1)
    ]
    assert len(runnable) >= 2, "the invoke and events descriptions show commands"
    run_blocks(runnable, live, "the OpenAPI descriptions")


def test_every_openapi_example_runs_a_job_that_succeeds(live):
    doc = http("GET", live.api.url + "/api-docs/swagger.json")[1]
    examples = [
        example["value"]
        for item in doc["paths"].values()
        for op in item.values()
        for media in op.get("requestBody", {}).get("content", {}).values()
        for example in media.get("examples", {}).values()
    ]
    assert {e["botType"] for e in examples} == {"python", "node", "java"}
    jobs = []
    for example in examples:
        status, reply, _ = http("POST", live.api.url + "/invoke", example)
        assert status == 202, (example, reply)
        jobs.append(reply["jobId"])
    deadline = time.monotonic() + 60
    for job_id, example in zip(jobs, examples, strict=True):
        job = wait_for(
            lambda job_id=job_id: _finished(live, job_id),
            max(1.0, deadline - time.monotonic()),
            what=f"the example {example}",
        )
        assert job["state"] == "succeeded", job


def _finished(live: Live, job_id: str) -> dict | None:
    job = http("GET", f"{live.api.url}/job/{job_id}")[1]
    return job if job.get("state") in TERMINAL else None
