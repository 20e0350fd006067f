"""The CLI client (botsys invoke / stats) against a live test server."""

from __future__ import annotations

import asyncio
import io
import json
from types import SimpleNamespace

from botsys.client import invoke, stats
from tests.api.conftest import USER_KEY, FakeRunner


def args(client, **kw):
    base = dict(
        url=str(client.make_url("/")),
        api_key="",
        bot_type="python",
        bot=None,
        priority=None,
        webhook_url=None,
        wait=False,
    )
    return SimpleNamespace(**(base | kw))


async def test_invoke_prints_the_job(client):
    out, err = io.StringIO(), io.StringIO()
    assert await invoke(args(client, bot="hello"), {"a": 1}, out, err) == 0
    assert json.loads(out.getvalue())["status"] == "queued"


async def test_invoke_wait_shows_progress_then_the_result(make_client):
    client = await make_client(workers=True, runner=FakeRunner(), **{"api.keys": [USER_KEY]})
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.wait_for(
        invoke(args(client, wait=True, api_key=USER_KEY), {"x": 2}, out, err), 20
    )
    assert code == 0
    job = json.loads(out.getvalue())
    assert job["state"] == "succeeded" and job["result"] == {"echo": {"x": 2}}
    # Not a terminal: one bar per line, and the last one is the finished job's.
    assert err.getvalue().splitlines()[-1] == f"[{'#' * 30}] 100% succeeded "


async def test_invoke_error_names_the_field(client):
    out, err = io.StringIO(), io.StringIO()
    assert await invoke(args(client, bot_type="ruby"), {}, out, err) == 1
    assert "botType" in err.getvalue()


async def test_stats_table(client):
    out, err = io.StringIO(), io.StringIO()
    assert await stats(args(client), out, err) == 0
    assert "python" in out.getvalue() and "webhooks:" in out.getvalue()
    assert await stats(args(client, url="http://127.0.0.1:1"), out, err) == 1


async def test_no_server_is_one_line_saying_so(client):
    from tests.support.redis_server import free_port

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for call in (
        lambda o, e: invoke(args(client, url=url), {}, o, e),
        lambda o, e: stats(args(client, url=url), o, e),
    ):
        out, err = io.StringIO(), io.StringIO()
        assert await call(out, err) == 1
        assert err.getvalue() == (
            f"botsys: cannot reach {url}: connection refused; is `python -m botsys serve` "
            "running there? (--url or BOTSYS_URL names another server)\n"
        )
