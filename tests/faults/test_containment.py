"""Bots are untrusted code, against real `serve` replicas running as root with the defaults
(bots as botsys-bot, each attempt in its own PID namespace), with real python, node and java
probes: they find none of the server's secrets, and nothing they start survives their attempt
or a kill -9 of their replica. And the server itself is non-dumpable."""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from botsys import undumpable
from tests.support.procs import Cluster, children_of, http, pid_alive, wait_for, write_config
from tests.support.redis_server import RedisServer
from tests.support.requires import require, require_root

from .containment import BOT_USER, copy_probes, daemons, left_after, open_folder, processes_with

pytestmark = pytest.mark.faults
API_KEY = "key-" + secrets.token_hex(16)
ADMIN_KEY = "admin-" + secrets.token_hex(16)
WEBHOOK_SECRET = "whsec_" + secrets.token_hex(24)
CONFIG_SECRET = "whsec_" + secrets.token_hex(24)  # only in the config file (mode 0600)


@pytest.fixture(autouse=True)
def bot_user():
    require_root("bot users need the server as root")
    names = {p.pw_name for p in pwd.getpwall()}
    require(BOT_USER in names, f"no {BOT_USER} user (scripts/test.sh creates it)")
    return pwd.getpwnam(BOT_USER)


@pytest.fixture(params=["spawn", "fork"])
def start(request) -> str:
    """How python bots start (``bot_types.python.start``); other types always spawn."""
    bot_type = getattr(request.node, "callspec", None) and request.node.callspec.params.get(
        "bot_type"
    )
    if request.param == "fork" and bot_type not in (None, "python"):
        pytest.skip("start = fork is for python bots")
    return request.param


@pytest.fixture
def contained(tmp_path, bot_user, start):
    """One replica with secrets in its environment and its config file, bots as botsys-bot."""
    shared = open_folder()
    bots = copy_probes(shared / "bots", "snoop", "escape")
    config = write_config(
        tmp_path / "secret.toml",
        f'[runner]\nbot_user = "{BOT_USER}"\nbots_dir = "{bots}"\ncache_dir = "{shared / "cache"}"\n'
        f'[webhooks]\nsecret = "{CONFIG_SECRET}"\n[bot_types.python]\nstart = "{start}"\n',
    )
    config.chmod(0o600)
    redis = RedisServer(tmp_path / "redis").start()
    env = {"BOTSYS_API_KEYS": API_KEY, "BOTSYS_ADMIN_KEYS": ADMIN_KEY}
    cluster = Cluster(tmp_path, redis.url, config, env_extra=env)
    try:
        replica = cluster.add_replica("contained")
        yield replica, redis.url, config, shared
    finally:
        cluster.stop()
        redis.kill()
        shutil.rmtree(shared, ignore_errors=True)


def run_job(replica, bot_type: str, bot: str, payload: dict, timeout: float = 90) -> dict:
    headers = {"X-API-Key": API_KEY}
    body = {"botType": bot_type, "bot": bot, "payload": payload, "timeout": 30}
    status, job, _ = http("POST", replica.url + "/invoke", body, headers)
    assert status == 202, job

    def finished():
        _, view, _ = http("GET", f"{replica.url}/job/{job['jobId']}", headers=headers)
        return view if view.get("state") in ("succeeded", "failed", "timed_out") else None

    return wait_for(finished, timeout, interval=0.1, what=f"{bot_type}/{bot} to finish")


@pytest.mark.parametrize("bot_type", ["python", "node", "java"])
def test_a_bot_finds_none_of_the_servers_secrets(contained, bot_type):
    replica, redis_url, config, _ = contained
    job = run_job(replica, bot_type, "snoop", {"config": str(config)})
    assert job["state"] == "succeeded", job.get("error")
    result = job["result"]
    assert result["server"] == replica.pid, "the probe looked at its own server"
    seen = json.dumps(job)
    for name, secret in [
        ("REDIS_URL", redis_url),
        ("BOTSYS_API_KEYS", API_KEY),
        ("BOTSYS_ADMIN_KEYS", ADMIN_KEY),
        ("the config file's webhook secret", CONFIG_SECRET),
    ]:
        assert secret not in seen, f"a {bot_type} bot read {name}"
    tried = " ".join(result["denied"])
    for what in ("environ", "mem", "/fd", str(config)):
        assert f"{what}" in tried, f"{what} was not refused: {tried[:500]}"


@pytest.mark.parametrize("bot_type", ["python", "node", "java"])
def test_nothing_of_a_bot_survives_a_kill_9_of_its_replica(contained, bot_type):
    replica, _, _, shared = contained
    token = f"300.{secrets.randbelow(10**9)}"
    headers = {"X-API-Key": API_KEY}
    body = {"botType": bot_type, "bot": "escape", "payload": {"sleep": token, "holdS": 120}}
    status, job, _ = http("POST", replica.url + "/invoke", body, headers)
    assert status == 202, job
    wait_for(lambda: len(daemons(token)) == 2, 60, interval=0.02, what="the daemons to start")
    bot = processes_with(str(shared).encode())  # the bot's command names its script or build
    # a forked bot's command line is its zygote's: all the replica's descendants then
    forked = descendants(replica.pid)
    assert bot or len(forked) >= 3, "the bot itself is running"
    replica.proc.kill()
    replica.proc.wait(10)
    assert left_after(lambda: daemons(token)) == [], "a daemon outlived its replica"
    assert left_after(lambda: processes_with(str(shared).encode())) == []
    assert left_after(lambda: [pid for pid in forked if pid_alive(pid)]) == []


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        children = children_of(todo.pop())
        found += children
        todo += children
    return found


def test_a_non_dumpable_server_hides_its_environment_from_its_own_user(bot_user, tmp_path):
    """Same uid as the bots (a non-root server): only PR_SET_DUMPABLE 0 hides /proc/<pid>."""
    folder = open_folder()
    try:
        shutil.copy(undumpable.__file__, folder / "undumpable.py")
        for hide in (True, False):
            assert _environ_readable(folder, hide) is not hide
    finally:
        shutil.rmtree(folder)


def _environ_readable(folder: Path, hide: bool) -> bool:
    """Start a stand-in server as the bot user (optionally non-dumpable) with a secret in its
    environment; can another process of that user read it?"""
    secret = secrets.token_hex(16)
    python = next(p for p in ("/usr/bin/python3", sys.executable) if os.path.exists(p))
    as_user = ["setpriv", f"--reuid={BOT_USER}", f"--regid={BOT_USER}", "--clear-groups", "--"]
    code = (
        f"import sys; sys.path.insert(0, {str(folder)!r}); import undumpable\n"
        f"assert undumpable.make_undumpable() if {hide} else True\n"
        "print('ready', flush=True); sys.stdin.read()\n"
    )
    server = subprocess.Popen(
        [*as_user, python, "-c", code],
        env={"SECRET": secret, "PATH": "/usr/bin:/bin"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd="/",
    )
    try:
        assert server.stdout.readline().strip() == "ready"
        snoop = subprocess.run(
            [*as_user, "cat", f"/proc/{server.pid}/environ"], capture_output=True, cwd="/"
        )
        return secret.encode() in snoop.stdout
    finally:
        server.kill()
        server.wait()


def test_serve_stops_with_the_fix_when_the_bot_user_is_missing(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOTSYS_", "REDIS_URL"))}
    done = subprocess.run(
        [sys.executable, "-m", "botsys", "serve", "--port", "0"],
        env={**env, "BOTSYS_BOT_USER": "no_such_bot_user"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "runner.bot_user = 'no_such_bot_user': no such user; create it (useradd" in done.stderr
