"""Words and examples for the OpenAPI document (kept out of the route table so it stays short)."""

from __future__ import annotations

from http import HTTPStatus

from .schemas import Problem

PROBLEM_DESCRIPTIONS = {
    400: "malformed request: JSON (NaN, Infinity, 1e400, lone surrogates included) or HTTP",
    408: "the request body did not arrive within server.body_timeout_s",
    401: "missing or invalid API key",
    403: "needs an admin key",
    404: "not found",
    405: "method not allowed (see the Allow header)",
    409: "conflicts with the current state",
    412: "If-Match names an older version: read it again (the ETag header has the current)",
    413: "request body too large (server.max_body_bytes)",
    415: "Content-Type must be application/json",
    422: "invalid request: `errors` names each field",
    429: "rate limited: retry after Retry-After seconds",
    503: "the job store (Redis) is unreachable or refuses the work (full, read-only, …): "
    "retry after Retry-After seconds",
}
RETRY_AFTER = {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}}


def errors(*codes: int) -> dict:
    """Problem responses for ``@docs(responses=...)``; openapi.py maps them to problem+json."""
    out = {}
    for code in codes:
        entry = {
            "schema": Problem(),
            "description": PROBLEM_DESCRIPTIONS.get(code, HTTPStatus(code).phrase),
        }
        if code in (429, 503):
            entry["headers"] = RETRY_AFTER
        out[str(code)] = entry
    return out


IDEMPOTENCY_HEADER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": "Repeat a request safely: the same key returns the job it first created "
    "(for 24 h, per bot type), also across replicas and concurrent repeats. The same key with a "
    "different request is a 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[ -~]+$"},
}

INVOKE_DESCRIPTION = """\
Queues a job for a bot of `botType` and answers at once with its id (202). The job waits until
fewer than the type's `limit` bots of that type run across all replicas (lower `priority` runs
first, FIFO within a priority), runs as a subprocess with `payload` on stdin, and its result is
POSTed to `webhookUrl` (signed, retried) when it ends.

Follow it with `GET /job/{jobId}` (Location header) or live with `GET /job/{jobId}/events`.

```
curl -s localhost:3000/invoke -H 'Content-Type: application/json' \\
     -d '{"botType": "python", "bot": "data_analysis", "payload": {"numbers": [1, 2, 3]}}'
```

Errors name the field: an unknown `botType` or `bot` lists the valid ones, a blocked
`webhookUrl` says why, unknown fields are listed.
"""

INVOKE_EXAMPLES = {
    "python": {
        "summary": "Python: data_analysis, most urgent (add webhookUrl to get the result POSTed)",
        "value": {
            "botType": "python",
            "bot": "data_analysis",
            "payload": {"numbers": [4, 8, 15, 16, 23, 42]},
            "priority": 1,
        },
    },
    "node": {
        "summary": "Node.js: the simulate bot, 1 s, never failing",
        "value": {
            "botType": "node",
            "bot": "simulate",
            "payload": {"durationMs": 1000, "failureRate": 0},
            "priority": 3,
            "timeout": 30,
        },
    },
    "java": {
        "summary": "Java: batch_process of 3 records, two attempts, starting in 1 s",
        "value": {
            "botType": "java",
            "bot": "batch_process",
            "payload": {"records": [{"id": 1, "qty": 2}, {"id": 2, "qty": 5}, {"id": 3}]},
            "attempts": 2,
            "delay": 1000,
        },
    },
}

EVENTS_DESCRIPTION = """\
`text/event-stream`. The first event is the job's current `state` (with the full job as
`job`); then `progress` (`{"progress": 50}`), `log` (`{"lines": [...]}`) and `state` events
follow as they happen, from whichever replica runs the bot. The stream ends after a terminal
state (`succeeded`, `failed`, `timed_out`, `cancelled`), whose event carries the final job.
A `: heartbeat` comment is sent every 15 s.

```
JOB=$(curl -s localhost:3000/invoke -H 'Content-Type: application/json' -d '{"botType": "python"}' \\
      | python3 -c 'import json, sys; print(json.load(sys.stdin)["jobId"])')
curl -N localhost:3000/job/$JOB/events
```
"""
