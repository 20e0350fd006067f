"""Names checked by a pattern are matched whole: `$` would also accept a final newline."""

from __future__ import annotations

import re

from botsys.api.headers import request_id_of
from botsys.api.schemas import CURSOR_PATTERN
from botsys.jobs import bot_type_of

JOB_ID = "python-" + "0" * 26


def test_a_job_id_with_a_trailing_newline_is_no_job_id():
    assert bot_type_of(JOB_ID) == "python"
    assert bot_type_of(JOB_ID + "\n") is None


def test_a_cursor_with_a_trailing_newline_is_refused():
    cursor = "1_" + JOB_ID
    assert re.match(CURSOR_PATTERN, cursor)  # marshmallow's Regexp uses re.match
    assert re.match(CURSOR_PATTERN, cursor + "\n") is None


def test_a_request_id_with_a_trailing_newline_is_replaced():
    class Request:
        def __init__(self, rid: str) -> None:
            self.headers = {"X-Request-Id": rid}

    assert request_id_of(Request("abc")) == "abc"
    assert request_id_of(Request("abc\n")) != "abc\n"
