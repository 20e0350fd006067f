"""The CLI's HTTP client: ``botsys invoke`` and ``botsys stats`` against a running server.

``invoke --wait`` follows the job's Server-Sent Events, drawing a one-line progress bar on
stderr, then prints the finished job as JSON on stdout (exit 0 if it succeeded, 1 otherwise).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from typing import Any, TextIO

import aiohttp

from .states import TERMINAL, JobState

BAR_WIDTH = 30


def _headers(args) -> dict[str, str]:
    return {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}


def _fail(status: int, body: Any, err: TextIO) -> int:
    if isinstance(body, dict) and "detail" in body:
        print(f"botsys: HTTP {status}: {body['detail']}", file=err)
        for field, messages in (body.get("errors") or {}).items():
            print(f"  {field}: {'; '.join(messages)}", file=err)
    else:
        print(f"botsys: HTTP {status}: {body}", file=err)
    return 1


def unreachable(base: str, exc: aiohttp.ClientError) -> str:
    """One line a user can act on (aiohttp's own text names ``ssl:default`` even for http)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        code = exc.os_error.errno
        reason = (os.strerror(code) if code else str(exc.os_error)).lower()
        return (
            f"cannot reach {base}: {reason}; is `python -m botsys serve` running there? "
            "(--url or BOTSYS_URL names another server)"
        )
    return f"cannot reach {base}: {exc or type(exc).__name__}"


async def _json(response: aiohttp.ClientResponse) -> Any:
    try:
        return await response.json(content_type=None)
    except ValueError:
        return await response.text()


async def invoke(args, payload: Any, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    body: dict[str, Any] = {"botType": args.bot_type, "payload": payload}
    for field, value in (
        ("bot", args.bot),
        ("priority", args.priority),
        ("webhookUrl", args.webhook_url),
    ):
        if value is not None:
            body[field] = value
    base = args.url.rstrip("/")
    try:
        async with aiohttp.ClientSession(headers=_headers(args)) as session:
            async with session.post(f"{base}/invoke", json=body) as r:
                reply = await _json(r)
                if r.status not in (200, 202):
                    return _fail(r.status, reply, err)
            if not args.wait:
                print(json.dumps(reply, indent=2), file=out)
                return 0
            job = await _follow(session, base, reply["jobId"], err)
    except aiohttp.ClientError as exc:
        print(f"botsys: {unreachable(base, exc)}", file=err)
        return 1
    print(json.dumps(job, indent=2), file=out)
    return 0 if job.get("state") == JobState.SUCCEEDED else 1


async def _follow(session: aiohttp.ClientSession, base: str, job_id: str, err: TextIO) -> dict:
    """The finished job: from the event stream, or by polling if the stream breaks."""
    bar = ProgressBar(err)
    try:
        async with session.get(f"{base}/job/{job_id}/events", timeout=None) as r:
            if r.status == 200:
                async for kind, data in sse_events(r.content):
                    if kind == "progress":
                        bar.draw(data.get("progress", 0), JobState.RUNNING)
                    elif kind == "state":
                        job = data.get("job") or {}
                        bar.draw(job.get("progress", 0), data.get("state", ""))
                        if data.get("state") in TERMINAL and job:
                            bar.done()
                            return job
    except (TimeoutError, aiohttp.ClientError):
        pass  # fall back to polling below
    while True:
        async with session.get(f"{base}/job/{job_id}") as r:
            job = await r.json()
        bar.draw(job.get("progress", 0), job.get("state", ""))
        if job.get("state") in TERMINAL:
            bar.done()
            return job
        await asyncio.sleep(0.5)


async def sse_events(stream: aiohttp.StreamReader) -> AsyncIterator[tuple[str, dict]]:
    """(event type, decoded data) for each event; comments (heartbeats) are skipped."""
    kind, data = "message", []
    async for raw in stream:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                try:
                    yield kind, json.loads("\n".join(data))
                except ValueError:
                    pass
            kind, data = "message", []
        elif line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


class ProgressBar:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty() if hasattr(stream, "isatty") else False

    def draw(self, percent: int, state: str) -> None:
        percent = max(0, min(100, int(percent or 0)))
        filled = BAR_WIDTH * percent // 100
        line = f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {percent:3d}% {state:<10}"
        self.stream.write(("\r" if self.tty else "") + line + ("" if self.tty else "\n"))
        self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


async def stats(args, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    base = args.url.rstrip("/")
    try:
        async with aiohttp.ClientSession(headers=_headers(args)) as session:
            async with session.get(f"{base}/stats") as r:
                body = await _json(r)
                if r.status != 200:
                    return _fail(r.status, body, err)
    except aiohttp.ClientError as exc:
        print(f"botsys: {unreachable(base, exc)}", file=err)
        return 1
    print(format_stats(body), file=out)
    return 0


STATS_COLUMNS = ("waiting", "delayed", "running", "limit", *TERMINAL)


def format_stats(body: dict) -> str:
    rows = [f"{'type':10}" + "".join(f"{c:>10}" for c in STATS_COLUMNS) + "  paused"]
    for name, s in sorted(body["botTypes"].items()):
        cells = "".join(f"{s[c]:>10}" for c in STATS_COLUMNS)
        rows.append(f"{name:10}{cells}  {'yes' if s['paused'] else 'no'}")
    w = body["webhooks"]
    rows.append(
        f"webhooks: {w['pending']} pending, {w['delivered']} delivered, {w['failed']} failed"
    )
    return "\n".join(rows)
