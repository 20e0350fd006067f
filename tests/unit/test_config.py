"""Configuration: defaults, environment overrides, and one-line errors for bad values."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from botsys.config import (
    BUNDLED_BOTS,
    DEFAULT_CONFIG,
    FIELD_KINDS,
    SECTIONS,
    BotTypeSettings,
    ConfigError,
    build_settings,
    ignored_environment,
    load_settings,
)


def test_defaults_match_the_seed():
    s = load_settings(environ={})
    assert {t: bt.limit for t, bt in s.bot_types.items()} == {"python": 5, "node": 10, "java": 3}
    assert (s.server.port, s.webhooks.max_retries, s.webhooks.retry_delay_ms) == (3000, 5, 1000)
    assert s.mock_webhook.port == 5000 and s.redis.url == ""


def test_environment_overrides_including_the_seed_names():
    s = load_settings(
        environ={
            "MAX_PYTHON_BOTS": "7",
            "MAX_JAVA_BOTS": "1",
            "REDIS_URL": "redis://:pw@h:6380/2",
            "API_GATEWAY_PORT": "8080",
            "BOTSYS_API_KEYS": "k1, k2",
            "BOTSYS_WEBHOOK_ALLOW": "hooks.internal:8443,10.1.0.0/16",
            "WEBHOOK_RETRY_DELAY": "250",
            "BOTSYS_RATE_LIMIT": "0",
        }
    )
    assert s.bot_types["python"].limit == 7 and s.bot_types["java"].limit == 1
    assert s.redis.url == "redis://:pw@h:6380/2" and s.server.port == 8080
    assert s.api.keys == ["k1", "k2"] and s.api.rate_limit == "0"
    assert s.webhooks.allow == ["hooks.internal:8443", "10.1.0.0/16"]
    assert s.webhooks.retry_delay_ms == 250


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"MAX_PYTHON_BOTS": "-1"}, "bot_types.python.limit = -1: must be between 0 and 100000"),
        (
            {"MAX_NODE_BOTS": "ten"},
            "MAX_NODE_BOTS='ten' (bot_types.node.limit): must be a whole number",
        ),
        ({"API_GATEWAY_PORT": "70000"}, "server.port = 70000: must be between 0 and 65535"),
        (
            {"BOTSYS_LOG_LEVEL": "LOUD"},
            "logging.level = 'LOUD': must be one of DEBUG, INFO, WARNING, ERROR",
        ),
        ({"BOTSYS_RATE_LIMIT": "5/fortnight"}, "api.rate_limit = '5/fortnight': expected"),
        (
            {"BOTSYS_WEBHOOK_SECRET": "hunter2"},
            "webhooks.secret: must start with 'whsec_' (value not shown)",
        ),
    ],
)
def test_bad_environment_values_name_the_key(environ, message):
    with pytest.raises(ConfigError) as err:
        load_settings(environ=environ)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert "hunter2" not in str(err.value)


@pytest.mark.parametrize(
    "raw, message",
    [
        (
            {"engine": {"lease_ms": 1000, "heartbeat_ms": 900}},
            "engine.heartbeat_ms = 900: must be at most half",
        ),
        ({"engine": {"lease_msec": 5}}, "unknown key engine.lease_msec; allowed: lease_ms"),
        ({"enigne": {}}, "unknown section [enigne]"),
        ({"engine": {"max_in_flight": 2.5}}, "engine.max_in_flight = 2.5: must be a whole number"),
        ({"server": {"insecure": "yes"}}, "server.insecure = 'yes': must be true or false"),
        (
            {"bot_types": {"Ruby!": {"command": ["ruby"], "extension": ".rb"}}},
            "bot type names are lowercase",
        ),
        (
            {"bot_types": {"ruby": {"extension": ".rb"}}},
            "bot_types.ruby.command = []: a command template is required",
        ),
        (
            {"bot_types": {"ruby": {"command": ["ruby", "{script}"], "extension": "rb"}}},
            "must start with '.'",
        ),
        (
            {"bot_types": {"ruby": {"command": ["ruby"], "extension": ".rb", "limit": -2}}},
            "bot_types.ruby.limit = -2",
        ),
    ],
)
def test_bad_config_values_name_the_key(raw, message):
    with pytest.raises(ConfigError) as err:
        build_settings(raw)
    assert message in str(err.value)


def test_every_setting_is_a_kind_the_checks_know():
    """Types are read from the annotations by a fixed table (no eval): a setting of another type
    must be added to it, or the config could not be checked."""
    for section in [*SECTIONS.values(), BotTypeSettings]:
        for f in dataclasses.fields(section):
            assert f.type in FIELD_KINDS, f"{section.__name__}.{f.name}: {f.type}"


def test_a_new_language_is_only_configuration():
    s = build_settings(
        {"bot_types": {"ruby": {"command": ["ruby", "{script}"], "extension": ".rb", "limit": 2}}}
    )
    assert s.bot_types["ruby"].limit == 2 and s.bot_types["ruby"].default_bot == "simulate"


def test_bad_config_file_stops_startup_with_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[engine]\nmax_stalls = -3\n")
    proc = subprocess.run(
        [sys.executable, "-m", "botsys", "--config", str(bad), "serve", "--check"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == ["botsys: config error: engine.max_stalls = -3: must be between 0 and 100"], (
        proc.stderr
    )


def test_a_user_file_is_merged_over_the_bundled_defaults(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text(
        "[engine]\nlease_ms = 4000\nheartbeat_ms = 1000\n[bot_types.python]\nlimit = 9\n"
        '[bot_types.bash]\ncommand = ["bash", "{script}"]\nextension = ".sh"\n'
    )
    s = load_settings(mine, environ={})
    assert s.engine.lease_ms == 4000 and s.engine.max_stalls == 2
    assert s.bot_types["python"].limit == 9 and s.bot_types["python"].extension == ".py"
    assert set(s.bot_types) == {"python", "node", "java", "bash"}


def test_trusted_proxies_must_be_networks():
    assert load_settings(
        environ={"BOTSYS_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1"}
    ).api.trusted_proxies == [
        "10.0.0.0/8",
        "127.0.0.1",
    ]
    with pytest.raises(
        ConfigError, match="api.trusted_proxies: 'nginx' is not an IP address or CIDR"
    ):
        load_settings(environ={"BOTSYS_TRUSTED_PROXIES": "nginx"})


def test_botsys_config_is_laid_over_the_defaults_like_config(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text("[server]\nport = 3100\n")
    s = load_settings(environ={"BOTSYS_CONFIG": str(mine)})
    assert s.server.port == 3100 and s.server.host == "127.0.0.1"
    assert s.source == str(mine)
    assert load_settings(mine, environ={"BOTSYS_CONFIG": "/nowhere.toml"}).server.port == 3100


def test_the_defaults_alone_need_no_file_outside_the_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(environ={})
    assert Path(s.source) == DEFAULT_CONFIG and DEFAULT_CONFIG.parent.name == "botsys"
    assert s.runner.bots_dir == ""  # the bundled bots (runners/registry.bots_root)


def test_a_missing_user_file_is_one_line_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"config file .*nope\.toml not found"):
        load_settings(environ={"BOTSYS_CONFIG": str(tmp_path / "nope.toml")})


def test_variables_of_the_original_system_are_named_not_silently_ignored():
    warnings = ignored_environment({"WEBHOOK_MANAGER_PORT": "4000", "REDIS_HOST": "redis"})
    assert len(warnings) == 2
    assert warnings[0].startswith("WEBHOOK_MANAGER_PORT is set but ignored: ")
    assert "REDIS_URL=redis://HOST:6379" in warnings[1]
    assert ignored_environment({"API_GATEWAY_PORT": "3000", "PATH": "/bin"}) == []


def test_a_checkout_shows_the_defaults_and_the_bundled_bots_at_its_top():
    """config.toml and bots/ at the top of the repository are the package's own files."""
    top = Path(__file__).resolve().parents[2]
    assert (top / "config.toml").resolve() == DEFAULT_CONFIG.resolve()
    assert (top / "bots").resolve() == BUNDLED_BOTS.resolve()


@pytest.mark.parametrize(
    "key, value",
    [
        ("bot_types", {"nl\n": {"command": ["x"], "extension": ".x"}}),
        ("api", {"rate_limit": "0\n"}),
    ],
)
def test_a_trailing_newline_is_refused(key, value):
    with pytest.raises(ConfigError):
        build_settings({key: value})
