"""The wire protocol and output caps: pure functions, no processes."""

from __future__ import annotations

import json

import pytest

from botsys.runners.output import TRUNCATED_MARKER, OutputCollector
from botsys.runners.protocol import (
    Invalid,
    LineSplitter,
    Log,
    Progress,
    Result,
    encode_envelope,
    parse_line,
)
from botsys.runners.types import AttemptSpec

from .conftest import RecordingSink


@pytest.mark.parametrize(
    ("line", "event"),
    [
        (b'{"progress": 50}', Progress(50)),
        (b'{"progress": 150}', Progress(100)),
        (b'{"progress": -3}', Progress(0)),
        (b'{"progress": 33.6}', Progress(34)),
        (b'{"log": "hi"}', Log("hi")),
        (b'{"log": {"a": 1}}', Log('{"a": 1}')),
        (b'{"result": null}', Result(None)),
        (b'{"result": [1, {"x": "y"}]}', Result([1, {"x": "y"}])),
        (b'  {"result": 7}  \r\n', Result(7)),
        (b"plain text", Log("plain text")),
        (b'{"progress": "half"}', Log('{"progress": "half"}')),  # not a number
        (b'{"progress": true}', Log('{"progress": true}')),
        (b'{"progress": 5, "log": "x"}', Log('{"progress": 5, "log": "x"}')),  # two keys
        (b'{"other": 1}', Log('{"other": 1}')),  # not an event type
        (b"[1, 2]", Log("[1, 2]")),
        (b'{"broken": ', Log('{"broken": ')),
        (b"\xff\xfe bytes", Log("\ufffd\ufffd bytes")),
        (b"", None),
        (b"   ", None),
        (b'{"log": "\\ud800 lone"}', Log("? lone")),  # a lone surrogate cannot be stored
    ],
)
def test_parse_line(line, event):
    assert parse_line(line) == event


def test_envelope_is_one_json_line():
    spec = AttemptSpec("j1", "python", "hello", {"a": "é"}, 2, 10.0)
    data = encode_envelope(spec)
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert json.loads(data) == {
        "jobId": "j1",
        "botType": "python",
        "bot": "hello",
        "payload": {"a": "é"},
        "attempt": 2,
    }


def test_line_splitter_joins_chunks_and_cuts_long_lines():
    splitter = LineSplitter(max_line=8)
    assert splitter.feed(b"ab") == []
    assert splitter.feed(b"c\nde\n") == [(b"abc", False), (b"de", False)]
    # 20 bytes with no newline: the first 8 are returned as cut, the rest discarded
    assert splitter.feed(b"x" * 20) == [(b"x" * 8, True)]
    assert splitter.feed(b"yyy\nok\n") == [(b"ok", False)]
    assert splitter.feed(b"tail") == []
    assert splitter.flush() == [(b"tail", False)]


def test_log_cap_forwards_at_most_the_cap_then_one_marker():
    sink = RecordingSink()
    out = OutputCollector(sink, log_cap=100, result_cap=1024)
    for _ in range(50):
        out.stdout(b"0123456789\n")
        out.stderr(b"abcdefghij\n")
    out.finish()
    forwarded = sum(len(t) for t in sink.logs if t != TRUNCATED_MARKER)
    assert forwarded <= 100, f"forwarded {forwarded} bytes of log over a 100-byte cap"
    assert sink.logs.count(TRUNCATED_MARKER) == 1 and out.log_truncated


def test_last_result_wins_and_progress_is_deduplicated():
    sink = RecordingSink()
    out = OutputCollector(sink, log_cap=1024, result_cap=1024)
    out.stdout(b'{"progress": 10}\n{"progress": 10}\n{"result": 1}\n{"progress": 20}\n')
    out.stdout(b'{"result": {"final": true}}')  # no trailing newline
    out.finish()
    assert sink.progress_values == [10, 20]
    assert out.result == {"final": True} and out.result_error is None


@pytest.mark.parametrize("size", [2000, 50_000])  # just over the cap; far over (line cut)
def test_oversized_result_is_an_error(size):
    out = OutputCollector(RecordingSink(), log_cap=1024, result_cap=1024)
    out.stdout(json.dumps({"result": "x" * size}).encode() + b"\n")
    out.finish()
    assert out.result is None
    assert "result too large" in out.result_error and "1 KiB" in out.result_error


@pytest.mark.parametrize(
    ("line", "where"),
    [
        (b'{"result": NaN}', "result: number out of range"),
        (b'{"result": Infinity}', "result: number out of range"),
        (b'{"result": {"x": [1, -Infinity]}}', "result.x[1]: number out of range"),
        (b'{"result": 1e400}', "result: number out of range"),  # overflows to inf
        (b'{"result": "\\udc00"}', "result: string contains a lone surrogate"),
        (b'{"result": {"\\ud800": 1}}', "result: key contains a lone surrogate"),
        (b'{"result": ' + b"[" * 200 + b"]" * 200 + b"}", "nested deeper than 100 levels"),
    ],
)
def test_a_result_that_is_not_valid_json_is_invalid(line, where):
    event = parse_line(line)
    assert isinstance(event, Invalid) and where in event.error, event


@pytest.mark.parametrize("value", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_a_non_finite_progress_is_invalid(value):
    event = parse_line(b'{"progress": ' + value + b"}")
    assert isinstance(event, Invalid) and "progress" in event.error


def test_an_invalid_result_fails_even_when_a_valid_one_follows():
    out = OutputCollector(RecordingSink(), log_cap=1024, result_cap=1024)
    out.stdout(b'{"result": NaN}\n{"result": 1}\n')
    out.finish()
    assert "not valid JSON" in out.result_error and "result: number out of range" in (
        out.result_error
    )


def test_stderr_tail_keeps_the_last_bytes():
    out = OutputCollector(RecordingSink(), log_cap=10, result_cap=1024)
    out.stderr(b"x" * 100_000 + b"\nTraceback: the real reason\n")
    assert out.stderr_tail().endswith("Traceback: the real reason")
    assert len(out.stderr_tail()) <= 4097
