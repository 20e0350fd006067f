"""Redis refusals → 503 problems: each error reply, as redis-py parses it, names its reason."""

from __future__ import annotations

import json

import pytest
from redis._parsers.base import BaseParser
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from botsys.api.problems import PROBLEM_JSON, store_problem
from botsys.store.errors import REFUSALS, STORE_FAILED, refusal_of

# The replies as Redis 7 sends them (a command, and the same refusal from inside a script).
REPLIES = {
    "OOM": "OOM command not allowed when used memory > 'maxmemory'.",
    "READONLY": "READONLY You can't write against a read only replica.",
    "MISCONF": "MISCONF Redis is configured to save RDB snapshots, but it's currently unable "
    "to persist to disk. Commands that may modify the data set are disabled, because this "
    "instance is configured to report errors during writes if RDB snapshotting fails.",
    "BUSY": "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN "
    "NOSAVE.",
    "LOADING": "LOADING Redis is loading the dataset in memory",
}
KINDS = {
    "OOM": ("store-out-of-memory", "full"),
    "READONLY": ("store-read-only", "read-only"),
    "MISCONF": ("store-cannot-persist", "cannot save to disk"),
    "BUSY": ("store-busy", "busy running"),
    "LOADING": ("store-loading", "loading its dataset"),
}


@pytest.mark.parametrize("code", list(REPLIES))
@pytest.mark.parametrize("in_script", [False, True])
def test_each_refusal_is_a_503_with_retry_after_and_its_reason(code, in_script):
    reply = REPLIES[code] + (" script: 4b25bf, on @user_script:1." if in_script else "")
    exc = BaseParser.parse_error(reply)
    assert isinstance(exc, STORE_FAILED), "background loops survive it"
    problem = store_problem(exc)
    kind, words = KINDS[code]
    assert problem is not None and problem.status == 503
    assert problem.kind == kind and words in problem.detail
    assert int(problem.headers["Retry-After"]) == REFUSALS[code].retry_after_s >= 1
    response = problem.response()
    assert response.content_type == PROBLEM_JSON
    body = json.loads(response.body)
    assert body["type"].endswith("/" + kind) and body["status"] == 503


def test_a_refused_multi_names_the_refusal():
    exc = ResponseError(
        "Command # 1 (HSET m a 1) of pipeline caused error: EXECABORT Transaction discarded "
        "because of: OOM command not allowed when used memory > 'maxmemory'.",
        status_code="EXECABORT",
    )
    assert refusal_of(exc) is REFUSALS["OOM"]


def test_an_outage_is_the_generic_503_and_another_error_reply_is_a_bug():
    down = store_problem(RedisConnectionError("Connection refused"))
    assert down is not None and down.kind == "store-unavailable"
    assert store_problem(TimeoutError()).status == 503
    assert store_problem(BaseParser.parse_error("WRONGTYPE Operation against a key")) is None
    assert store_problem(BaseParser.parse_error("ERR unknown command")) is None
    assert store_problem(ValueError("bug")) is None
