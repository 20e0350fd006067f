"""scripts/start.sh as a newcomer runs it: the URLs it prints answer, webhooks reach the mock
signed and checked, `kill <its pid>` stops everything it started, and a taken mock port stops
it with the mock's own error instead of running half set up."""

from __future__ import annotations

import os
import signal
import socket

import pytest

from tests.support.procs import ROOT, Proc, base_env, http, pid_alive, wait_for
from tests.support.redis_server import free_port

pytestmark = pytest.mark.e2e

START = ROOT / "scripts" / "start.sh"


def start_script(tmp_path, api_port: int, mock_port: int) -> Proc:
    env = base_env(MOCK_WEBHOOK_PORT=str(mock_port))
    env.pop("API_GATEWAY_PORT", None)
    return Proc(
        ["bash", str(START), "--port", str(api_port)],
        env,
        tmp_path / "start.log",
        api_port,
        name="start.sh",
    ).start()


def test_kill_of_start_sh_stops_the_server_and_the_mock(tmp_path):
    api_port, mock_port = free_port(), free_port()
    script = start_script(tmp_path, api_port, mock_port)
    started: list[int] = []
    try:
        script.wait_http(timeout=120)  # the first run may still install the venv
        started += script.descendants()
        assert started, "the mock webhook runs below the server"
        printed = script.log(200)
        for shown in (
            f"http://127.0.0.1:{api_port}/api-docs",
            f"http://localhost:{mock_port}",
            f"mock webhook on http://127.0.0.1:{mock_port}",  # the mock's own output, not hidden
        ):
            assert shown in printed
        hook = f"http://localhost:{mock_port}/hook"
        body = {"botType": "python", "bot": "hello", "payload": {}, "webhookUrl": hook}
        assert http("POST", script.url + "/invoke", body)[0] == 202
        got = wait_for(
            lambda: http("GET", f"http://127.0.0.1:{mock_port}/webhooks")[1]["webhooks"],
            30,
            what="the webhook at the mock",
        )
        assert got[0]["signature"] == {"checked": True, "valid": True, "error": None}

        os.kill(script.pid, signal.SIGTERM)  # what `kill <pid of start.sh>` does
        assert script.proc.wait(30) == 0, script.log()
        wait_for(lambda: not any(pid_alive(pid) for pid in started), 10, what="the mock to exit")
        for port in (api_port, mock_port):
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        _cleanup(script, started)


def test_a_taken_mock_port_stops_start_sh_with_the_mocks_error(tmp_path):
    api_port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        mock_port = holder.getsockname()[1]
        script = start_script(tmp_path, api_port, mock_port)
        try:
            assert script.proc.wait(120) == 1
        finally:
            _cleanup(script)
    output = script.log(200)
    assert f"botsys: port {mock_port} is in use" in output
    assert "the mock webhook did not start" in output
    assert "listening on" not in output  # the server never started


def _cleanup(script: Proc, started: list[int] = ()) -> None:
    leftovers = [*started, *(script.descendants() if script.alive() else [])]
    script.stop()
    for pid in leftovers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_taken_api_port_stops_start_sh_and_its_mock(tmp_path):
    mock_port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        api_port = holder.getsockname()[1]
        script = start_script(tmp_path, api_port, mock_port)
        started: list[int] = []
        try:
            wait_for(lambda: "mock webhook on" in script.log(200), 120, what="the mock")
            started += script.descendants()
            assert script.proc.wait(60) == 2
            wait_for(lambda: not any(pid_alive(pid) for pid in started), 10, what="the mock")
        finally:
            _cleanup(script, started)
    assert f"botsys: port {api_port} is in use (on 127.0.0.1)" in script.log(200)
