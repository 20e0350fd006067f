"""The wrapper chain and environment, as data (no processes needed)."""

from __future__ import annotations

import dataclasses

import pytest

from botsys.config import BotTypeSettings, ConfigError
from botsys.runners.sandbox import Sandbox, Tools, parse_env, render, rlimit_args


def bot_type(**kw) -> BotTypeSettings:
    return dataclasses.replace(BotTypeSettings(name="t", command=["x"], extension=".x"), **kw)


def test_rlimit_args_follow_the_type_settings():
    args = rlimit_args(
        bot_type(memory_mb=512, memory_rlimit="as", cpu_s=2, open_files=64, processes=32)
    )
    assert args == [
        "--core=0",
        "--as=536870912",
        "--cpu=2:3",
        "--nofile=64",
        "--fsize=67108864",
        "--nproc=32",
    ]


def test_zero_means_not_limited():
    args = rlimit_args(bot_type(memory_mb=0, cpu_s=0, open_files=0, file_size_mb=0))
    assert args == ["--core=0"]


def test_render_fills_known_placeholders_only():
    argv = render(["{python}", "-c", "print({x})", "{script}"], {"python": "/py", "script": "/b"})
    assert argv == ["/py", "-c", "print({x})", "/b"]


def test_type_env_must_be_name_value():
    assert parse_env(bot_type(env=["A=1", "B=x=y", "C="])) == {"A": "1", "B": "x=y", "C": ""}
    with pytest.raises(ConfigError, match="not NAME=value"):
        parse_env(bot_type(env=["no-equals"]))


def test_prefix_is_setpriv_then_prlimit(settings):
    sandbox = Sandbox(settings, Tools("/usr/bin/setpriv", "/usr/bin/prlimit"))
    prefix = sandbox.prefix("node")
    assert prefix[:4] == ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--"]
    assert prefix[4] == "/usr/bin/prlimit" and prefix[-1] == "--"
    assert "--data=1073741824" in prefix  # node: RLIMIT_DATA, never RLIMIT_AS


def test_missing_tools_fall_back_with_a_warning(settings, caplog):
    sandbox = Sandbox(settings, Tools(None, None))
    assert sandbox.prefix("python") == []
    assert "will NOT die with the server" in caplog.text
    assert "WITHOUT resource limits" in caplog.text


def test_unknown_run_as_user_is_a_config_error(bots_dir, java_cache):
    from .conftest import make_settings

    settings = make_settings(bots_dir, java_cache, **{"bot_types.node.run_as": "no_such_user_x"})
    with pytest.raises(ConfigError, match="no such user"):
        Sandbox(settings)
