"""botsys-launch (launch.c): limits, parent-death signal and refusals, as real processes;
without a PID namespace, its subreaper ending everything a bot started; and how the sandbox
picks it or falls back to the setpriv + prlimit chain."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from botsys.runners import launcher as launcher_module
from botsys.runners.launcher import build_launcher
from botsys.runners.sandbox import Sandbox, Tools
from tests.faults.containment import daemons, left_after, processes_with
from tests.support.procs import stat_fields
from tests.support.requires import require, require_root, require_tool


@pytest.fixture(scope="module")
def compiler() -> str:
    # Without one the sandbox uses the setpriv + prlimit chain (tested elsewhere).
    return require_tool("cc", "apt-get install gcc libc6-dev; scripts/test.sh does")


LIMITS = (
    "import json, resource as r; print(json.dumps([r.getrlimit(x) for x in "
    "(r.RLIMIT_NOFILE, r.RLIMIT_CPU, r.RLIMIT_CORE, r.RLIMIT_FSIZE, r.RLIMIT_DATA)]))"
)


@pytest.fixture(scope="module")
def launcher(tmp_path_factory, compiler) -> str:
    built = build_launcher(tmp_path_factory.mktemp("cache"))
    assert built is not None, "cc is present, so the launcher must build and pass its probe"
    return built


def test_limits_are_set_before_the_command_runs(launcher):
    argv = [launcher, str(os.getpid()), "nofile=64", "cpu=5:6", "core=0", "fsize=1048576"]
    argv += ["data=1073741824", "--", sys.executable, "-c", LIMITS]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        [64, 64],
        [5, 6],
        [0, 0],
        [1048576, 1048576],
        [1073741824, 1073741824],
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["bogus=1"], "not a limit"),
        (["nofile=64x"], "not a limit"),
        (["nofile="], "not a limit"),
        (["nofile=9:3"], "not a limit"),  # soft above hard
        (["nofile"], "not a limit"),
        (["nofile=-1"], "not a limit"),
    ],
)
def test_a_bad_limit_is_refused_and_the_command_never_runs(launcher, tmp_path, args, message):
    marker = tmp_path / "ran"
    argv = [launcher, str(os.getpid()), *args, "--", "touch", str(marker)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    assert done.returncode == 127 and message in done.stderr, done.stderr
    assert not marker.exists()


def test_a_parent_that_is_not_the_server_means_the_server_is_gone(launcher, tmp_path):
    marker = tmp_path / "ran"
    argv = [launcher, "999999", "--", "touch", str(marker)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    assert done.returncode == 127 and "the server is gone" in done.stderr
    assert not marker.exists()


@pytest.mark.parametrize(
    "argv, message",
    [(["1", "--", "true"], "not a parent pid"), (["x", "--", "true"], "not a parent pid")],
)
def test_usage_errors_are_one_line(launcher, argv, message):
    done = subprocess.run([launcher, *argv], capture_output=True, text=True, timeout=10)
    assert done.returncode == 127 and done.stderr.count("\n") == 1 and message in done.stderr


def test_a_missing_command_is_reported(launcher):
    argv = [launcher, str(os.getpid()), "--", "/nonexistent/bot"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    assert done.returncode == 127 and "/nonexistent/bot: No such file" in done.stderr


def test_the_bot_dies_when_its_server_is_killed(launcher):
    # A stand-in server starts a bot through the launcher, reports its pid, and is SIGKILLed.
    # Started in the test's own process group: the launcher must make a group of its own, or
    # killing "its" group on the server's death would kill this test run.
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, subprocess, sys, time\n"
            f"p = subprocess.Popen([{launcher!r}, str(os.getpid()), '--', 'sleep', '60'])\n"
            "print(p.pid, flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    bot = int(server.stdout.readline())
    server.kill()
    server.wait(10)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{bot}").exists() and _state(bot) != "Z":
        assert time.monotonic() < deadline, "the bot outlived its server"
        time.sleep(0.01)


def test_everything_the_bot_started_dies_when_its_server_is_killed(launcher):
    # The bot starts a child of its own (in its process group) and waits; then the stand-in
    # server is SIGKILLed. The parent-death signal alone would reach only the bot.
    bot_script = "sleep 300 & echo $$ $!; wait"
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, subprocess, sys, time\n"
            f"subprocess.Popen([{launcher!r}, str(os.getpid()), '--', 'sh', '-c', "
            f"{bot_script!r}], process_group=0)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    bot, grandchild = map(int, server.stdout.readline().split())
    server.kill()
    server.wait(10)
    deadline = time.monotonic() + 5
    while any(_state(pid) not in ("gone", "Z") for pid in (bot, grandchild)):
        assert time.monotonic() < deadline, "the bot's own child outlived the server"
        time.sleep(0.01)


@pytest.mark.parametrize(
    "script, returncode",
    [("exit 3", 3), ("exit 0", 0), ("kill -TERM $$", -15), ("kill -SEGV $$", -11)],
)
def test_the_launcher_ends_the_way_its_bot_ended(launcher, script, returncode):
    argv = [launcher, str(os.getpid()), "core=0", "--", "sh", "-c", script]
    assert subprocess.run(argv, capture_output=True, timeout=10).returncode == returncode


def test_a_sigterm_to_the_group_is_the_bots_to_handle(launcher):
    # Timeouts and cancels SIGTERM the bot's group: the launcher must not die of it first.
    script = "trap 'echo cleaned up; exit 7' TERM; echo ready; while :; do sleep 0.01; done"
    bot = subprocess.Popen(
        [launcher, str(os.getpid()), "--", "sh", "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        process_group=0,
    )
    assert bot.stdout.readline() == "ready\n"
    os.killpg(bot.pid, signal.SIGTERM)
    assert bot.wait(10) == 7
    assert bot.stdout.read() == "cleaned up\n"


# Without ns=pid (the fallback where namespaces are refused): the bot starts a setsid
# grandchild and a double-forked daemon, both `sleep <token>`, says so, then waits for stdin.
ESCAPE = (
    'setsid sleep "$1" & (sleep "$1" &); '
    'until [ "$(pgrep -cxf "sleep $1")" -ge 2 ]; do sleep 0.01; done; echo running; read _; exit 0'
)


def start_escape(launcher: str, token: str, *, script: str = ESCAPE) -> subprocess.Popen:
    """As the runner starts a bot: a process group of its own, pipes; its daemons running."""
    bot = subprocess.Popen(
        [launcher, str(os.getpid()), "core=0", "--", "sh", "-c", script, "escape", token],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        process_group=0,
    )
    assert bot.stdout.readline() == "running\n"
    assert len(daemons(token)) == 2
    return bot


def test_without_a_pid_namespace_nothing_the_bot_started_outlives_it(launcher, token):
    bot = start_escape(launcher, token)
    bot.stdin.close()  # the bot exits 0
    assert bot.wait(10) == 0
    assert left_after(lambda: daemons(token)) == [], "a daemon outlived the launcher"


@pytest.mark.parametrize("stop, returncode", [(signal.SIGTERM, -15), (signal.SIGKILL, -9)])
def test_without_a_pid_namespace_a_stopped_bot_takes_its_daemons(launcher, token, stop, returncode):
    # Timeout and cancel: SIGTERM to the group, SIGKILL after the grace period (which kills
    # the launcher too: the reaper, outside the group, is left to end the rest).
    bot = start_escape(launcher, token)
    os.killpg(bot.pid, stop)
    assert bot.wait(10) == returncode
    assert left_after(lambda: daemons(token)) == [], "a daemon outlived the launcher"


def test_without_a_pid_namespace_a_bot_that_left_its_group_still_dies_with_it(launcher, token):
    # The group's SIGKILL misses a bot that called setsid itself; the reaper does not.
    script = f'exec setsid sh -c {ESCAPE!r} escape "$1"'  # a session of its own
    bot = start_escape(launcher, token, script=script)
    os.killpg(bot.pid, signal.SIGKILL)
    assert bot.wait(10) == -signal.SIGKILL
    assert left_after(lambda: daemons(token)) == [], "the bot's daemons outlived it"
    assert left_after(lambda: _bot_shells(token)) == [], "the bot itself escaped the kill"


def test_without_a_pid_namespace_a_killed_server_takes_the_daemons_too(launcher, token):
    # A stand-in server starts the escape through the launcher, reports the launcher's pid,
    # and is SIGKILLed once the daemons run.
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, subprocess, sys, time\n"
            f"p = subprocess.Popen([{launcher!r}, str(os.getpid()), '--', 'sh', '-c', "
            f"{ESCAPE!r}, 'escape', {token!r}], stdin=subprocess.PIPE, process_group=0)\n"
            "print(p.pid, flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    lines = {server.stdout.readline().strip() for _ in range(2)}
    assert "running" in lines and len(daemons(token)) == 2
    (launched,) = (int(line) for line in lines if line != "running")
    server.kill()
    server.wait(10)
    deadline = time.monotonic() + 5
    while _state(launched) not in ("gone", "Z"):
        assert time.monotonic() < deadline, "the launcher outlived its server"
        time.sleep(0.005)
    assert left_after(lambda: daemons(token)) == [], "a daemon outlived the launcher"


def test_without_a_pid_namespace_the_bot_gets_the_signal_state_it_would_get_alone(launcher):
    # The reaper blocks and handles signals of its own; none of that may reach the bot.
    show = ["sh", "-c", "grep -E '^(SigBlk|SigIgn|SigCgt)' /proc/self/status"]
    alone = subprocess.run(show, capture_output=True, text=True, timeout=10).stdout
    argv = [launcher, str(os.getpid()), "--", *show]
    assert subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout == alone


def _bot_shells(token: str) -> list[int]:
    return processes_with(f"escape\0{token}\0".encode())


def _state(pid: int) -> str:
    return (stat_fields(pid) or ["gone"])[0]


def _dynamically_linked(binary: str) -> bool:
    """Has the ELF64 file a PT_INTERP program header (a dynamic loader to run first)?"""
    data = Path(binary).read_bytes()
    assert data[:5] == b"\x7fELF\x02", "an ELF64 binary"
    phoff = int.from_bytes(data[32:40], "little")
    size, count = int.from_bytes(data[54:56], "little"), int.from_bytes(data[56:58], "little")
    types = [
        int.from_bytes(data[phoff + i * size : phoff + i * size + 4], "little")
        for i in range(count)
    ]
    return 3 in types  # PT_INTERP


def _static_libc(cc: str) -> bool:
    found = subprocess.run([cc, "-print-file-name=libc.a"], capture_output=True, text=True)
    return os.path.isabs(found.stdout.strip()) and os.path.exists(found.stdout.strip())


def test_the_launcher_is_linked_statically_when_the_c_library_allows(launcher, compiler):
    require(_static_libc(compiler), "no static C library (apt-get install libc6-dev)")
    assert not _dynamically_linked(launcher), "no dynamic loader before every bot"


def test_without_a_static_c_library_it_is_linked_dynamically(tmp_path, monkeypatch, compiler):
    # The first flag set fails to compile, as -static does without libc.a.
    monkeypatch.setattr(launcher_module, "FLAGS", (("-O2", "-no-such-flag"), ("-O2",)))
    built = build_launcher(tmp_path / "cache")
    assert built is not None and _dynamically_linked(built)
    assert launcher_module.probe(built)


def test_no_compiler_means_no_launcher(tmp_path, monkeypatch):
    monkeypatch.setattr(launcher_module.shutil, "which", lambda name: None)
    assert build_launcher(tmp_path / "cache") is None


def test_a_cache_folder_others_can_write_is_not_used(tmp_path, caplog):
    cache = tmp_path / "cache"
    cache.mkdir()
    os.chmod(cache, 0o777)
    assert build_launcher(cache) is None
    assert "writable by others" in caplog.text


def test_a_planted_binary_is_rebuilt_not_run(launcher, tmp_path):
    cache = tmp_path / "cache"
    built = Path(build_launcher(cache))
    built.write_text("#!/bin/sh\nexit 0\n")
    os.chmod(built, 0o777)  # writable by others: not ours to trust
    assert build_launcher(cache) == str(built)
    assert built.read_bytes().startswith(b"\x7fELF") and not built.stat().st_mode & 0o022


def test_the_sandbox_uses_the_launcher_except_for_run_as_types(settings, launcher):
    sandbox = Sandbox(settings, Tools("/usr/bin/setpriv", "/usr/bin/prlimit", launcher))
    prefix = sandbox.prefix("node")
    assert prefix[:2] == [launcher, str(os.getpid())] and prefix[-1] == "--"
    assert "data=1073741824" in prefix and "core=0" in prefix
    fallback = Sandbox(settings, Tools("/usr/bin/setpriv", "/usr/bin/prlimit")).prefix("node")
    assert fallback[0] == "/usr/bin/setpriv"


def test_the_probe_tells_a_working_launcher_from_a_missing_one(launcher):
    assert launcher_module.probe(launcher)
    assert not launcher_module.probe("/nonexistent/launcher")


@pytest.mark.parametrize(
    "option", ["user=0:0", "user=x:1", "user=1", "user=1:", "ns=mnt", "ns=pid,net"]
)
def test_a_bad_option_is_refused_and_the_command_never_runs(launcher, tmp_path, option):
    marker = tmp_path / "ran"
    argv = [launcher, str(os.getpid()), option, "--", "touch", str(marker)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    assert done.returncode == 127 and done.stderr.startswith("botsys-launch: "), done.stderr
    assert not marker.exists()


def test_in_a_pid_namespace_the_bot_is_pid_2_and_exits_as_it_ended(launcher):
    argv = [launcher, str(os.getpid()), "ns=pid", "--", "sh", "-c", 'echo "$$ $PPID"; exit 7']
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    if "unshare" in done.stderr:
        pytest.skip(f"no PID namespaces here: {done.stderr.strip()}")
    assert (done.returncode, done.stdout.split()) == (7, ["2", "1"]), done.stderr
    killed = subprocess.run([*argv[:3], "--", "sh", "-c", "kill -TERM $$"], timeout=10)
    assert killed.returncode == -signal.SIGTERM  # the bot's signal, as without a namespace


def test_not_root_the_namespaces_come_with_a_user_namespace(launcher):
    """A non-root server: the launcher owns its PID and network namespaces through a user
    namespace in which the bot keeps its uid. Run here as botsys-bot (needs root to switch)."""
    import pwd
    import shutil
    import tempfile

    require_root("switching to an unprivileged user needs root")
    names = {p.pw_name for p in pwd.getpwall()}
    require("botsys-bot" in names, "no botsys-bot user (scripts/test.sh creates it)")
    user = pwd.getpwnam("botsys-bot")
    folder = Path(tempfile.mkdtemp(prefix="botsys-launch-"))
    try:
        folder.chmod(0o755)
        copy = shutil.copy(launcher, folder / "botsys-launch")
        as_user = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}"]
        as_user += ["--clear-groups", "--"]
        machine = [*as_user, "unshare", "--user", "--pid", "--net", "--fork", "true"]
        if subprocess.run(machine, capture_output=True, timeout=10, cwd="/").returncode != 0:
            pytest.skip("this machine refuses unprivileged user namespaces")
        script = 'echo "$(id -u) $$"; setsid sleep 300 &'
        argv = [*as_user, copy, str(os.getpid()), "ns=pid", "ns=net", "--", "sh", "-c", script]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd="/")
        assert done.returncode == 0, done.stderr
        uid, pid = done.stdout.split()
        assert (int(uid), pid) == (user.pw_uid, "2")
        assert not [p for p in os.listdir("/proc") if p.isdigit() and _is_sleep_300_of(p, user)]
    finally:
        shutil.rmtree(folder)


def test_not_root_the_subreaper_needs_no_privilege(launcher, token):
    """Where namespaces are refused, e.g. our image's uid 10001: the fallback works for an
    unprivileged launcher. Run here as botsys-bot (needs root to switch)."""
    import pwd
    import shutil
    import tempfile

    require_root("switching to an unprivileged user needs root")
    names = {p.pw_name for p in pwd.getpwall()}
    require("botsys-bot" in names, "no botsys-bot user (scripts/test.sh creates it)")
    user = pwd.getpwnam("botsys-bot")
    folder = Path(tempfile.mkdtemp(prefix="botsys-launch-"))
    try:
        folder.chmod(0o755)
        copy = shutil.copy(launcher, folder / "botsys-launch")
        as_user = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}"]
        argv = [*as_user, "--clear-groups", "--", copy, str(os.getpid()), "--"]
        bot = subprocess.Popen(
            [*argv, "sh", "-c", ESCAPE, "escape", token],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            process_group=0,
            cwd="/",
        )
        assert bot.stdout.readline() == "running\n"
        assert {os.stat(f"/proc/{pid}").st_uid for pid in daemons(token)} == {user.pw_uid}
        bot.stdin.close()
        assert bot.wait(10) == 0
        assert left_after(lambda: daemons(token)) == [], "a daemon outlived the launcher"
    finally:
        shutil.rmtree(folder)


def _is_sleep_300_of(pid: str, user) -> bool:
    try:
        st = os.stat(f"/proc/{pid}")
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return st.st_uid == user.pw_uid and cmdline == b"sleep\x00300\x00"
