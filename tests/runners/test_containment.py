"""Containment through the real runner: bots of a root server run as the bot user, nothing a
bot starts outlives its attempt (setsid and double-forked daemons included; in a PID namespace
and, where namespaces are refused, through the launcher's subreaper), and a
``network = "none"`` bot cannot reach the machine's loopback services."""

from __future__ import annotations

import asyncio
import logging
import pwd
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from botsys.config import ConfigError
from botsys.runners import sandbox as sandbox_module
from botsys.runners import users
from botsys.runners.process import ProcessRunner
from botsys.runners.sandbox import Sandbox
from tests.faults.containment import BOT_USER, EXT, PROBES, daemons, left_after, open_folder
from tests.support.requires import require, require_root

from .conftest import RecordingSink, make_settings, run_bot, spec, write_bot

# Every case under both start modes of python bots (conftest.start_mode).
pytestmark = pytest.mark.usefixtures("start_mode")


@pytest.fixture
def root():
    require_root("bot users need the server as root")


as_root = pytest.mark.usefixtures("root")


@pytest.fixture
def open_dir():
    path = open_folder()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def bot_user():
    names = {p.pw_name for p in pwd.getpwall()}
    require(BOT_USER in names, f"no {BOT_USER} user (scripts/test.sh creates it)")
    return pwd.getpwnam(BOT_USER)


@pytest.fixture(params=["pid namespace", "subreaper"])
def containment(request, monkeypatch) -> str:
    """Each escape test twice: as this machine allows (a PID namespace here) and as where
    namespaces are refused (no ``ns=pid``: the launcher's subreaper fallback)."""
    if request.param == "subreaper":
        supports = sandbox_module.launcher_supports
        monkeypatch.setattr(
            sandbox_module,
            "launcher_supports",
            lambda launcher, option: option != "ns=pid" and supports(launcher, option),
        )
    return request.param


def contained_runner(settings, containment: str) -> ProcessRunner:
    runner = ProcessRunner(settings)
    assert runner.sandbox.tools.launcher, "these tests need botsys-launch (a C compiler)"
    if containment == "subreaper":
        assert "ns=pid" not in runner.sandbox.prefix("python")
    return runner


def copy_probe(bots: Path, bot_type: str, name: str) -> None:
    folder = bots / bot_type
    folder.mkdir(parents=True, exist_ok=True, mode=0o755)
    shutil.copy(PROBES / bot_type / f"{name}{EXT[bot_type]}", folder)


def default_settings(open_dir: Path, **overrides):
    """The defaults a root server gets: bots as botsys-bot (make_settings opts out)."""
    return make_settings(
        open_dir / "bots", open_dir / "cache", **{"runner.bot_user": BOT_USER, **overrides}
    )


WHOAMI = """
import json, os
home = os.stat(os.getcwd())
print(json.dumps({"result": {
    "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
    "home": [home.st_uid, oct(home.st_mode & 0o777)],
    "tmp": os.environ["TMPDIR"] == os.getcwd() == os.environ["HOME"],
    "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
}}))
"""


@as_root
async def test_a_root_server_runs_bots_as_the_bot_user_by_default(open_dir, bot_user):
    write_bot(open_dir / "bots", "python", "whoami", WHOAMI)
    (open_dir / "bots" / "python").chmod(0o755)
    (open_dir / "bots" / "python" / "whoami.py").chmod(0o644)
    outcome, _, _ = await run_bot(ProcessRunner(default_settings(open_dir)), "python", "whoami")
    assert outcome.status == "succeeded", outcome.error
    me = outcome.result
    assert (me["uid"], me["gid"], me["groups"]) == (
        bot_user.pw_uid,
        bot_user.pw_gid,
        [bot_user.pw_gid],
    )
    assert me["home"] == [bot_user.pw_uid, "0o700"] and me["tmp"]  # a private folder it owns
    assert me["fds"] == [0, 1, 2, 3]  # stdin, stdout, stderr; 3 is the listing itself


@as_root
@pytest.mark.parametrize("bot_type", ["python", "node", "java"])
async def test_nothing_a_bot_started_outlives_its_attempt(
    open_dir, bot_user, bot_type, containment, token
):
    copy_probe(open_dir / "bots", bot_type, "escape")
    runner = contained_runner(default_settings(open_dir), containment)
    outcome, sink, _ = await run_bot(runner, bot_type, "escape", {"sleep": token}, 60)
    assert outcome.status == "succeeded", outcome.error
    assert "daemons running" in sink.logs  # a setsid grandchild and a double-forked daemon ran
    assert left_after(lambda: daemons(token)) == [], "a daemon outlived its attempt"


@as_root
async def test_a_timed_out_bot_takes_its_daemons_with_it(open_dir, bot_user, containment, token):
    copy_probe(open_dir / "bots", "python", "escape")
    settings = default_settings(open_dir, **{"runner.kill_grace_s": 0.2})
    runner = contained_runner(settings, containment)
    payload = {"sleep": token, "holdS": 60}
    outcome, sink, _ = await run_bot(runner, "python", "escape", payload, timeout_s=3)
    assert outcome.status == "timed_out" and "daemons running" in sink.logs
    assert left_after(lambda: daemons(token)) == []


@as_root
async def test_a_cancelled_bot_takes_its_daemons_with_it(open_dir, bot_user, containment, token):
    copy_probe(open_dir / "bots", "python", "escape")
    runner = contained_runner(default_settings(open_dir), containment)
    sink = RecordingSink()
    attempt = asyncio.ensure_future(
        runner.run(spec("python", "escape", {"sleep": token, "holdS": 60}, 60), sink)
    )
    await asyncio.wait_for(sink.wait_for_log("daemons running"), 30)
    assert len(daemons(token)) == 2
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt
    assert left_after(lambda: daemons(token)) == []


STUBBORN_ESCAPE = """
trap '' TERM
setsid sleep "$SLEEP" & (sleep "$SLEEP" &)
until [ "$(pgrep -cxf "sleep $SLEEP")" -ge 2 ]; do sleep 0.01; done
echo '{"log": "daemons running"}'
sleep 60
"""


@as_root
async def test_a_bot_deaf_to_sigterm_takes_its_daemons_with_it(
    open_dir, bot_user, containment, token
):
    # The timeout's SIGTERM is ignored: the group's SIGKILL after the grace period kills the
    # launcher too, and the daemons must still go.
    write_bot(open_dir / "bots", "bash", "stubborn", STUBBORN_ESCAPE.replace("$SLEEP", token))
    (open_dir / "bots" / "bash").chmod(0o755)
    (open_dir / "bots" / "bash" / "stubborn.sh").chmod(0o644)
    settings = default_settings(open_dir, **{"runner.kill_grace_s": 0.2})
    runner = contained_runner(settings, containment)
    outcome, sink, _ = await run_bot(runner, "bash", "stubborn", timeout_s=3)
    assert outcome.status == "timed_out" and "daemons running" in sink.logs
    assert "SIGKILL" in outcome.error, outcome.error
    assert left_after(lambda: daemons(token)) == []


@pytest.mark.parametrize("network, reached", [("none", False), ("host", True)])
async def test_network_none_cannot_reach_loopback_services(
    bots_dir, java_cache, redis_server, network, reached
):
    port = redis_server.url.rsplit(":", 1)[1].split("/")[0]
    write_bot(
        bots_dir,
        "python",
        "connect",
        f"""
        import json, socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=5).close()
            print(json.dumps({{"result": "connected"}}))
        except OSError as exc:
            print(json.dumps({{"result": str(exc)}}))
        """,
    )
    settings = make_settings(bots_dir, java_cache, **{"bot_types.python.network": network})
    outcome, _, _ = await run_bot(ProcessRunner(settings), "python", "connect")
    assert outcome.status == "succeeded", outcome.error
    assert (outcome.result == "connected") is reached, outcome.result


@as_root
def test_a_missing_bot_user_stops_start_up_with_the_fix(open_dir):
    settings = default_settings(open_dir, **{"runner.bot_user": "no_such_bot_user"})
    with pytest.raises(
        ConfigError, match=r"runner.bot_user = 'no_such_bot_user': no such user.*useradd"
    ):
        Sandbox(settings)


@as_root
def test_a_bots_folder_the_bot_user_cannot_read_stops_start_up(bots_dir, java_cache, bot_user):
    settings = make_settings(bots_dir, java_cache, **{"runner.bot_user": BOT_USER})
    with pytest.raises(ConfigError, match="cannot reach the bots folder"):
        Sandbox(settings)


@as_root
def test_python_bots_get_an_interpreter_the_bot_user_can_run(open_dir, bot_user, monkeypatch):
    private = Path(tempfile.mkdtemp(prefix="botsys-private-"))  # 0700, like /root
    try:
        (private / "python3").symlink_to(sys.executable)
        monkeypatch.setattr(users.sys, "executable", str(private / "python3"))
        (open_dir / "bots").mkdir()
        sandbox = Sandbox(default_settings(open_dir))
        assert sandbox.python("python") in users.SYSTEM_PYTHONS
        no_user = Sandbox(default_settings(open_dir, **{"runner.bot_user": ""}))
        assert no_user.python("python") == str(private / "python3")
    finally:
        shutil.rmtree(private)


@as_root
def test_an_empty_bot_user_runs_bots_as_root_and_says_so(open_dir, caplog):
    (open_dir / "bots").mkdir()
    with caplog.at_level(logging.WARNING):
        Sandbox(default_settings(open_dir, **{"runner.bot_user": ""}))
    assert "run as root" in caplog.text


def test_network_must_be_host_or_none():
    from botsys.config import build_settings

    spec = {"command": ["x"], "extension": ".x", "network": "off"}
    with pytest.raises(ConfigError, match="bot_types.x.network = 'off': must be one of host, none"):
        build_settings({"bot_types": {"x": spec}})


def test_without_namespaces_start_up_says_what_is_lost(bots_dir, java_cache, monkeypatch, caplog):
    monkeypatch.setattr(sandbox_module, "launcher_supports", lambda launcher, option: False)
    settings = make_settings(bots_dir, java_cache)
    with caplog.at_level(logging.WARNING):
        prefix = Sandbox(settings).prefix("python")
    assert "ns=pid" not in prefix and "no PID namespace" in caplog.text
    assert "subreaper ends what a bot leaves behind" in caplog.text
    caplog.clear()
    monkeypatch.setattr(sandbox_module, "_lists_children", lambda: False)
    with caplog.at_level(logging.WARNING):
        Sandbox(settings)
    assert "descendants can outlive its job" in caplog.text
    no_net = make_settings(bots_dir, java_cache, **{"bot_types.python.network": "none"})
    with pytest.raises(ConfigError, match='network = "none"'):
        Sandbox(no_net)
