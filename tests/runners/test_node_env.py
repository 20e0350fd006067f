"""Node bots' environment: NODE_COMPILE_CACHE from Node 22.1 on (runners/node_cache.py), and
NODE_EXTRA_CA_CERTS (~40 ms of CPU per node start here) dropped unless the type sets it."""

from __future__ import annotations

import os

import pytest

from botsys.runners import sandbox as sandbox_module
from botsys.runners.node_cache import compile_cache_env, has_compile_cache, node_version
from botsys.runners.process import ProcessRunner
from botsys.runners.sandbox import Sandbox

from .conftest import make_settings, run_bot, write_bot

ENV_BOT = """
let input = "";
process.stdin.on("data", (c) => (input += c));
process.stdin.on("end", () => {
  const env = {
    extraCa: process.env.NODE_EXTRA_CA_CERTS ?? null,
    compileCache: process.env.NODE_COMPILE_CACHE ?? null,
  };
  process.stdout.write(JSON.stringify({ result: env }) + "\\n");
});
"""


@pytest.mark.parametrize(
    "version, expected",
    [
        ("v22.1.0", True),
        ("v22.12.0", True),
        ("v23.0.0", True),
        ("v30.0.1", True),
        ("v22.0.0", False),
        ("v21.7.3", False),
        ("v20.20.2", False),
        ("", False),
        ("garbage", False),
    ],
)
def test_compile_cache_from_node_22_1(version, expected):
    assert has_compile_cache(version) is expected


def test_compile_cache_env_creates_the_folder_unless_the_type_sets_it(tmp_path):
    folder = tmp_path / "cache" / "node"
    assert compile_cache_env("v20.20.2", folder, {}, None) == {}
    assert not folder.exists()
    assert compile_cache_env("v22.1.0", folder, {}, None) == {"NODE_COMPILE_CACHE": str(folder)}
    assert folder.is_dir() and folder.stat().st_mode & 0o777 == 0o700
    assert compile_cache_env("v22.1.0", folder, {"NODE_COMPILE_CACHE": "/x"}, None) == {}
    assert compile_cache_env("v22.1.0", folder, {"NODE_DISABLE_COMPILE_CACHE": "1"}, None) == {}


def test_node_here_is_probed_once():
    path = os.environ.get("PATH", "")
    version = node_version("node", path)
    assert version.startswith("v"), "node is installed on this machine"
    hits = node_version.cache_info().hits
    assert node_version("node", path) == version and node_version.cache_info().hits == hits + 1


async def test_a_node_with_the_cache_gets_it_in_its_env(bots_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox_module, "node_version", lambda argv0, path: "v22.1.0")
    write_bot(bots_dir, "node", "env", ENV_BOT)
    runner = ProcessRunner(make_settings(bots_dir, tmp_path / "cache"))
    outcome, _, _ = await run_bot(runner, "node", "env")
    assert outcome.status == "succeeded", outcome.error
    folder = tmp_path / "cache" / "node-compile-cache" / "node"
    assert outcome.result["compileCache"] == str(folder) and folder.is_dir()


async def test_node_20_gets_no_compile_cache_and_no_extra_ca_certs(bots_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("NODE_EXTRA_CA_CERTS", "/etc/ssl/certs/ca-certificates.crt")
    write_bot(bots_dir, "node", "env", ENV_BOT)
    settings = make_settings(bots_dir, tmp_path / "cache")
    runner = ProcessRunner(settings, sandbox=Sandbox(settings))
    outcome, _, _ = await run_bot(runner, "node", "env")
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == {"extraCa": None, "compileCache": None}


async def test_a_type_may_set_node_extra_ca_certs(bots_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("NODE_EXTRA_CA_CERTS", "/server/own.pem")
    write_bot(bots_dir, "node", "env", ENV_BOT)
    pem = "/etc/ssl/certs/ca-certificates.crt"
    env = [f"NODE_EXTRA_CA_CERTS={pem}"]
    runner = ProcessRunner(make_settings(bots_dir, tmp_path, **{"bot_types.node.env": env}))
    outcome, _, _ = await run_bot(runner, "node", "env")
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result["extraCa"] == pem
