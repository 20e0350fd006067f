"""A bot type defined only in settings works with no code; run_as; run_local for the CLI."""

from __future__ import annotations

import io
import json
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from botsys.runners.local import run_local
from botsys.runners.process import ProcessRunner
from tests.support.requires import require_root

from .conftest import RecordingSink, group_members, make_settings, run_bot, spec, write_bot

BOT_USER = "botsys-bot"


async def test_bash_type_from_settings_only(runner, bots_dir):
    # conftest's settings add [bot_types.bash] command = ["bash", "{script}"], extension ".sh"
    write_bot(
        bots_dir,
        "bash",
        "hello",
        """
        envelope=$(cat)
        echo '{"progress": 50}'
        echo "plain text is a log line"
        printf '{"result": {"bytes": %d}}\\n' "${#envelope}"
        """,
    )
    outcome, sink, _ = await run_bot(runner, "bash", None, {"a": 1})
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result["bytes"] > 20 and sink.progress_values == [50]
    assert sink.logs == ["plain text is a log line"]


async def test_ruby_like_type_with_a_missing_interpreter_fails_clearly(bots_dir, java_cache):
    settings = make_settings(
        bots_dir,
        java_cache,
        **{
            "bot_types.ruby.command": ["no-such-ruby", "{script}"],
            "bot_types.ruby.extension": ".rb",
        },
    )
    (bots_dir / "ruby").mkdir()
    (bots_dir / "ruby" / "simulate.rb").write_text("puts 1\n")
    outcome, _, _ = await run_bot(ProcessRunner(settings), "ruby", "simulate")
    assert outcome.status == "failed" and "no-such-ruby" in outcome.error


async def test_run_local_prints_events_and_returns_an_exit_code():
    from botsys.config import load_settings

    out = io.StringIO()
    payload = {"numbers": [1, 2, 3]}
    code = await run_local(load_settings(environ={}), "python/data_analysis", payload, out)
    lines = out.getvalue().splitlines()
    assert code == 0 and "started pid" in lines[0] and "progress 100%" in out.getvalue()
    assert json.loads(lines[-1])["result"]["mean"] == 2.0
    bad = io.StringIO()
    assert await run_local(load_settings(environ={}), "python/../etc", {}, bad) == 2
    assert "available:" in bad.getvalue()


@pytest.fixture
def bot_user():
    require_root("run_as switches to another user")
    try:
        return pwd.getpwnam(BOT_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", BOT_USER],
            check=True,
        )
        return pwd.getpwnam(BOT_USER)


@pytest.fixture
def shared_bots_dir():
    """pytest's tmp folders are private to root; the bot user must be able to read its script."""
    path = Path(tempfile.mkdtemp(prefix="botsys-test-bots-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def readable_bot(bots_dir: Path, bot_type: str, name: str, source: str) -> None:
    path = write_bot(bots_dir, bot_type, name, source)
    path.parent.chmod(0o755)
    path.chmod(0o644)


async def test_run_as_an_unprivileged_user(bot_user, shared_bots_dir, java_cache):
    settings = make_settings(shared_bots_dir, java_cache, **{"bot_types.bash.run_as": BOT_USER})
    readable_bot(
        shared_bots_dir,
        "bash",
        "whoami",
        """
        echo hi > "$HOME/written"  # the private folder belongs to the bot user
        ls /root >/dev/null 2>&1 && root=readable || root=denied
        printf '{"result": {"uid": %d, "gid": %d, "root": "%s", "home": "%s"}}\\n' \\
          "$(id -u)" "$(id -g)" "$root" "$(cat "$HOME/written")"
        """,
    )
    outcome, _, _ = await run_bot(ProcessRunner(settings), "bash", "whoami")
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result["uid"] == bot_user.pw_uid != 0
    assert outcome.result["gid"] == bot_user.pw_gid
    assert outcome.result["root"] == "denied" and outcome.result["home"] == "hi"


async def test_process_limit_applies_to_the_bot_user(bot_user, shared_bots_dir, java_cache):
    # RLIMIT_NPROC counts the user's processes, so it only bites with run_as (never for root).
    # dash (sh) gives up at the first failed fork; bash would retry for ~15 s.
    settings = make_settings(
        shared_bots_dir,
        java_cache,
        **{
            "bot_types.sh.command": ["sh", "{script}"],
            "bot_types.sh.extension": ".sh",
            "bot_types.sh.run_as": BOT_USER,
            "bot_types.sh.processes": 3,
        },
    )
    readable_bot(shared_bots_dir, "sh", "forker", "for i in 1 2 3 4 5 6; do sleep 5 & done\nwait\n")
    outcome, sink, elapsed = await run_bot(ProcessRunner(settings), "sh", "forker", timeout_s=10)
    assert outcome.status == "failed" and "fork" in outcome.error.lower(), outcome.error
    assert elapsed < 5, f"took {elapsed:.2f} s: it waited for the sleeps it should not have"
    assert not group_members(sink.pids[0])


def test_runners_never_import_redis_or_aiohttp():
    code = (
        "import sys, pkgutil, importlib, botsys.runners as r\n"
        "for m in pkgutil.iter_modules(r.__path__): importlib.import_module('botsys.runners.' + m.name)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'redis', 'aiohttp', 'fakeredis'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_a_failing_sink_does_not_break_the_attempt(bots_dir, java_cache):
    class BrokenSink(RecordingSink):
        def log(self, text: str) -> None:
            raise RuntimeError("sink bug")

    write_bot(bots_dir, "python", "chatty", "print('a')\nprint('b')\nprint('{\"result\": 1}')\n")
    runner = ProcessRunner(make_settings(bots_dir, java_cache))
    outcome = await runner.run(spec("python", "chatty"), BrokenSink())
    assert outcome.status == "succeeded" and outcome.result == 1


async def test_java_compiles_as_the_server_and_runs_as_the_bot_user(bot_user, shared_bots_dir):
    cache = shared_bots_dir / "cache"  # the bot user must read the compiled classes
    settings = make_settings(shared_bots_dir, cache, **{"bot_types.java.run_as": BOT_USER})
    readable_bot(
        shared_bots_dir,
        "java",
        "whoami",
        """
        public class whoami {
            public static void main(String[] args) throws Exception {
                System.in.readAllBytes();
                String user = System.getProperty("user.name");
                System.out.println("{\\"result\\": \\"" + user + "\\"}");
            }
        }
        """,
    )
    outcome, _, _ = await run_bot(ProcessRunner(settings), "java", "whoami")
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == BOT_USER
