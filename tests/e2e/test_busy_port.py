"""A taken port is one clear line and exit 2, for `serve` and `mock-webhook` alike; "listening"
is logged only once the server listens (and names the real port); variables of the original
system are warned about at start-up."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from tests.support.procs import ROOT, Proc, base_env, http, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def taken_port():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize("command", ["serve", "mock-webhook"])
def test_a_taken_port_is_one_line_and_exit_2(taken_port, command):
    done = subprocess.run(
        [sys.executable, "-m", "botsys", command, "--port", str(taken_port)],
        env=base_env(BOTSYS_LOG_FORMAT="text"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"botsys: port {taken_port} is in use (on 127.0.0.1)"]
    assert "listening" not in done.stdout + done.stderr
    assert "mock webhook on" not in done.stdout


def test_listening_is_logged_once_the_port_answers(tmp_path):
    server = Proc(
        [sys.executable, "-m", "botsys", "serve", "--port", "0"],
        base_env(WEBHOOK_MANAGER_PORT="4000"),  # the original's: warned about, not silent
        tmp_path / "serve.log",
        0,
        name="serve",
    ).start()
    try:
        line = wait_for(lambda: _listening_line(server), 30, what="the listening log line")
        server.port = int(line["message"].rsplit(":", 1)[1])
        assert server.port > 0
        assert http("GET", server.url + "/health")[0] == 200  # no retry: it is listening
        assert "WEBHOOK_MANAGER_PORT is set but ignored" in server.log()
    finally:
        server.stop()


def _listening_line(server: Proc) -> dict | None:
    if not server.alive():
        raise AssertionError(server.log())
    for raw in server.log_path.read_text().splitlines():
        if "listening on" in raw:
            return json.loads(raw)
    return None
