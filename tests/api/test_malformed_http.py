"""Malformed HTTP, which aiohttp's parser rejects before any middleware runs, is answered as
application/problem+json (400/413/431) and logged at INFO without a traceback — in process
and by a real `python -m botsys serve`."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys

import pytest
from aiohttp import web_server

from botsys.app import create_app, install_http_errors
from tests.conftest import make_settings
from tests.support.procs import Proc, base_env, free_port

MALFORMED = {
    "bad Content-Length": (
        b"POST /invoke HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n",
        400,
        "Content-Length",
    ),
    "Content-Length with Transfer-Encoding": (
        b"POST /invoke HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        "Transfer-Encoding",
    ),
    "oversized header": (
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
        431,
        "too long",
    ),
    "too many headers": (
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + b"".join(b"X-%d: 1\r\n" % i for i in range(200))
        + b"\r\n",
        431,
        "Too many headers",
    ),
    "bad chunk size": (
        b"POST /invoke HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        400,
        "chunk size",
    ),
    "NUL in a header": (
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\x00b\r\n\r\n",
        400,
        "header",
    ),
    "TLS on the HTTP port": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, "HTTPS"),
}


async def exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)  # the server closes after answering
    finally:
        writer.close()


def check_problem(answer: bytes, status: int, words: str) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert int(head.split(b" ", 2)[1]) == status, answer[:400]
    assert b"Content-Type: application/problem+json" in head, head
    problem = json.loads(body)
    assert problem["status"] == status and problem["title"] and problem["type"]
    assert words in problem["detail"], problem
    assert set(problem) == {"type", "title", "status", "detail", "errors"}


@pytest.fixture
async def server_port(aiohttp_client, monkeypatch):
    monkeypatch.setattr(web_server, "RequestHandler", web_server.RequestHandler)  # undone after
    install_http_errors()
    client = await aiohttp_client(create_app(make_settings(), with_workers=False))
    return client.server.port


@pytest.mark.parametrize("case", MALFORMED)
async def test_malformed_http_is_a_problem_logged_at_info(server_port, case, caplog):
    data, status, words = MALFORMED[case]
    caplog.set_level(logging.INFO)
    check_problem(await exchange(server_port, data), status, words)
    ours = [r for r in caplog.records if r.name == "botsys.http"]
    assert [r.levelno for r in ours] == [logging.INFO], caplog.text
    assert not any(r.exc_info for r in caplog.records), caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_well_formed_requests_are_untouched(server_port):
    answer = await exchange(
        server_port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 200 ")


@pytest.mark.e2e
def test_a_real_serve_answers_malformed_http_as_problems(tmp_path):
    port = free_port()
    serve = Proc(
        [sys.executable, "-m", "botsys", "serve", "--port", str(port)],
        base_env(BOTSYS_RATE_LIMIT="0", BOTSYS_LOG_LEVEL="INFO"),
        tmp_path / "serve.log",
        port,
        name="serve",
    ).start()
    try:
        serve.wait_http()
        for data, status, words in MALFORMED.values():
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(data)
                answer = b"".join(iter(lambda: s.recv(65536), b""))
            check_problem(answer, status, words)
    finally:
        serve.stop()
    lines = [json.loads(line) for line in serve.log(tail=500).splitlines() if line.startswith("{")]
    malformed = [r for r in lines if r.get("logger") == "botsys.http"]
    assert len(malformed) == len(MALFORMED), serve.log()
    assert all(r["level"] == "INFO" for r in malformed), malformed
    assert not [r for r in lines if r.get("level") == "ERROR" or "exc_info" in r], serve.log()
