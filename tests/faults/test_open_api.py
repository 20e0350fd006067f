"""An open API (no keys) really is local: no wildcard or empty bind address, and only requests
addressed to a loopback host name (a DNS-rebinding page sends its own host name)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from botsys.api.openapi import SPEC_PATH
from botsys.app import create_app
from tests.conftest import make_settings

NO_KEYS = {k: v for k, v in os.environ.items() if not k.startswith(("BOTSYS_", "REDIS_URL"))}


@pytest.mark.parametrize(
    "args, env",
    [
        (["--host", ""], {}),
        ([], {"BOTSYS_HOST": ""}),
        (["--host", "0.0.0.0"], {}),
        (["--host", "::"], {}),
        (["--host", "example.invalid"], {}),
    ],
    ids=["empty flag", "empty env", "0.0.0.0", "::", "host name"],
)
def test_serve_refuses_an_open_api_beyond_loopback(tmp_path, args, env):
    done = subprocess.run(
        [sys.executable, "-m", "botsys", "serve", "--port", "0", *args],
        env={**NO_KEYS, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=20,  # refused before the socket is bound: a pass takes ~1 s
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and "refusing to serve" in lines[0] and "API keys" in lines[0]


def test_serve_check_accepts_loopback_or_keys(tmp_path):
    def check(*args: str, **env: str) -> int:
        cmd = [sys.executable, "-m", "botsys", "serve", "--check", *args]
        run = subprocess.run(cmd, env={**NO_KEYS, **env}, cwd=tmp_path, capture_output=True)
        return run.returncode

    assert check("--host", "127.0.0.1") == 0
    assert check("--host", "::1") == 0
    assert check("--host", "", BOTSYS_API_KEYS="k" * 20) == 0
    assert check("--host", "0.0.0.0", "--insecure") == 0


@pytest.fixture
async def open_api(aiohttp_client):
    return await aiohttp_client(create_app(make_settings(), with_workers=False))


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:3000",
        "localhost.evil.example",
        "127.0.0.1.nip.io",
        "[::ffff:7f00:1]",
        "10.0.0.1:3000",
        "[::1]x",
        "localhost:x",
    ],
)
async def test_an_open_api_refuses_a_foreign_host_header(open_api, host):
    r = await open_api.get("/stats", headers={"Host": host})
    assert r.status == 421
    assert r.content_type == "application/problem+json"
    assert "loopback" in (await r.json())["detail"]


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "localhost:3000",
        "LOCALHOST.",
        "127.0.0.1:1",
        "127.8.9.10",
        "[::1]:3000",
        "[::1]",
    ],
)
async def test_an_open_api_answers_loopback_host_headers(open_api, host):
    # the API document: behind the same host check, and no store call whose deadline a loaded
    # machine could miss (/stats answered one 503 so in CI)
    assert (await open_api.get(SPEC_PATH, headers={"Host": host})).status == 200
    assert (await open_api.get(SPEC_PATH, headers={"Host": "evil.example"})).status == 421


async def test_with_keys_any_host_may_ask(aiohttp_client):
    app = create_app(make_settings(**{"api.keys": ["k" * 20]}), with_workers=False)
    client = await aiohttp_client(app)
    headers = {"Host": "api.example", "X-API-Key": "k" * 20}
    assert (await client.get("/stats", headers=headers)).status == 200


async def test_insecure_serves_any_host(aiohttp_client):
    app = create_app(make_settings(**{"server.insecure": True}), with_workers=False)
    client = await aiohttp_client(app)
    assert (await client.get("/stats", headers={"Host": "evil.example"})).status == 200
