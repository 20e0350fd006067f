"""Logging: JSON lines, context ids, redaction, idempotent setup."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re

import pytest

from botsys.logs import bind, log_context, setup_logging, unbind


@pytest.fixture
def stream():
    buf = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    setup_logging("DEBUG", "json", "replica-1", stream=buf)
    yield buf
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def lines(buf: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_every_line_is_json_with_the_base_fields(stream) -> None:
    logging.getLogger("botsys.x").info("hello %s", "world")
    (rec,) = lines(stream)
    assert rec["message"] == "hello world"
    assert rec["level"] == "INFO" and rec["logger"] == "botsys.x"
    assert rec["replica"] == "replica-1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", rec["time"])
    assert list(rec)[:5] == ["time", "level", "logger", "message", "replica"]


def test_context_ids_inside_the_block_only(stream) -> None:
    log = logging.getLogger("botsys.engine")
    with log_context(job_id="python-01", bot_type="python"):
        log.info("started")
        with log_context(request_id="req-9"):
            log.info("nested")
    log.info("after")
    started, nested, after = lines(stream)
    assert started["job_id"] == "python-01" and started["bot_type"] == "python"
    assert nested["request_id"] == "req-9" and nested["job_id"] == "python-01"
    assert "job_id" not in after and "request_id" not in after


def test_bind_stays_in_its_task(stream) -> None:
    log = logging.getLogger("botsys.engine")

    async def job(n: int) -> None:
        bind(job_id=f"node-{n}")
        await asyncio.sleep(0)
        log.info("in task")

    async def main() -> None:
        await asyncio.gather(job(1), job(2))
        log.info("outside")

    asyncio.run(main())
    recs = [r for r in lines(stream) if r["logger"] == "botsys.engine"]  # not asyncio's debug
    assert sorted(r.get("job_id") for r in recs[:2]) == ["node-1", "node-2"]
    assert "job_id" not in recs[2]
    token = bind(bot_type="java")
    unbind(token)
    log.info("unbound")
    assert "bot_type" not in lines(stream)[-1]


def test_secrets_are_redacted(stream) -> None:
    log = logging.getLogger("botsys.api")
    log.info("auth header Bearer sk-live-abc123 and whsec_c2VjcmV0 key")
    log.info("connecting to %s", "redis://:hunter2@redis:6379/0")
    log.info('"GET /jobs?api_key=qwerty&limit=5 HTTP/1.1" 200')
    log.info(
        "request",
        extra={"headers": {"Authorization": "Bearer t0k", "X-API-Key": "k1"}, "secret": "s"},
    )
    try:
        raise ValueError("bad signature whsec_abcdef")
    except ValueError:
        log.exception("failed")
    out = stream.getvalue()
    leaks = ("sk-live-abc123", "c2VjcmV0", "hunter2", "qwerty", "t0k", '"k1"', "whsec_abcdef")
    for leaked in leaks:
        assert leaked not in out
    first, second, query, third, fourth = lines(stream)
    assert "api_key=[REDACTED]&limit=5" in query["message"]
    assert "Bearer [REDACTED]" in first["message"] and "whsec_[REDACTED]" in first["message"]
    assert second["message"] == "connecting to redis://:[REDACTED]@redis:6379/0"
    assert third["headers"] == {"Authorization": "[REDACTED]", "X-API-Key": "[REDACTED]"}
    assert third["secret"] == "[REDACTED]"
    assert "ValueError" in fourth["exc_info"]


def test_setup_is_idempotent(stream) -> None:
    before = len(logging.getLogger().handlers)
    setup_logging("INFO", "json", "replica-1", stream=stream)
    assert len(logging.getLogger().handlers) == before
    logging.getLogger("botsys").info("once")
    assert len(lines(stream)) == 1


def test_level_is_applied(stream) -> None:
    setup_logging("WARNING", "json", "r", stream=stream)
    logging.getLogger("botsys").info("dropped")
    logging.getLogger("botsys").warning("kept")
    assert [r["message"] for r in lines(stream)] == ["kept"]


def test_text_format_is_one_human_line() -> None:
    buf = io.StringIO()
    root = logging.getLogger()
    saved = list(root.handlers)
    try:
        setup_logging("INFO", "text", "r2", stream=buf)
        with log_context(job_id="java-7"):
            logging.getLogger("botsys.runner").warning("slow Bearer xyz")
    finally:
        root.handlers[:] = saved
    line = buf.getvalue().strip()
    assert "\n" not in line
    assert re.match(
        r"^\S+Z WARNING botsys\.runner \[r2\] slow Bearer \[REDACTED\] job_id=java-7$", line
    )
