"""One logging setup: JSON lines (or a one-line text format) on stdout, with context ids.

``job_id``, ``bot_type`` and ``request_id`` come from a contextvar set with ``log_context`` or
``bind`` — never passed to every call. asyncio copies the context into each task it creates,
so ids bound inside a task stay in that task. A filter on the handler redacts secrets, so a
token that sneaks into a message or an ``extra`` field never reaches the log stream.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

CONTEXT_FIELDS = ("job_id", "bot_type", "request_id")
REDACTED = "[REDACTED]"

_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "botsys_log_context",
    default=MappingProxyType({}),  # read-only: never mutated, only replaced
)

# Keys whose values are secrets whatever they hold (extra fields, nested dicts such as headers).
_SECRET_KEY = re.compile(
    r"pass(word|wd)?|secret|token|authorization|cookie|api[_-]?keys?|admin[_-]?keys?|signature",
    re.IGNORECASE,
)
# Secrets recognisable by their shape inside free text.
_SECRET_TEXT = (
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    (re.compile(r"whsec_[A-Za-z0-9+/=_-]+"), "whsec_" + REDACTED),
    (re.compile(r"(?i)(x-api-key[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"), r"\1" + REDACTED),
    # key=value in query strings and config dumps (an access log of /path?api_key=...)
    (
        re.compile(
            r"(?i)\b((?:api[_-]?key|access[_-]?token|token|secret|password|passwd)=)[^&\s\"']+"
        ),
        r"\1" + REDACTED,
    ),
    # the password in redis://user:pass@host (REDIS_URL)
    (re.compile(r"(?i)(rediss?://[^:/@\s]*:)[^@\s]+@"), r"\1" + REDACTED + "@"),
)
# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
_HANDLER_MARK = "_botsys_handler"


def log_context(**fields: Any) -> _LogContext:
    """Add fields (job_id=..., bot_type=...) to every record logged inside the block."""
    return _LogContext(fields)


class _LogContext:
    # A class, not @contextmanager: every API request enters one, and the generator
    # machinery cost more than the contextvar itself.
    __slots__ = ("_fields", "_token")

    def __init__(self, fields: dict[str, Any]) -> None:
        self._fields = fields

    def __enter__(self) -> None:
        self._token = _context.set({**_context.get(), **self._fields})

    def __exit__(self, *exc: object) -> None:
        _context.reset(self._token)


def bind(**fields: Any) -> contextvars.Token:
    """Add fields for the rest of the current context (task); ``unbind(token)`` undoes it."""
    return _context.set({**_context.get(), **fields})


def unbind(token: contextvars.Token) -> None:
    _context.reset(token)


def current_context() -> Mapping[str, Any]:
    return dict(_context.get())


def redact_text(text: str) -> str:
    for pattern, replacement in _SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text


def redact_value(key: str, value: Any) -> Any:
    if _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value("", v) for v in value]
    return value


class ContextFilter(logging.Filter):
    """Adds replica and context ids to each record, then redacts secrets in place."""

    def __init__(self, replica: str) -> None:
        super().__init__()
        self.replica = replica

    def filter(self, record: logging.LogRecord) -> bool:
        record.replica = self.replica
        for key, value in _context.get().items():
            if not hasattr(record, key):  # an explicit extra= wins over the context
                setattr(record, key, value)
        record.msg = redact_text(record.getMessage())
        record.args = None
        for key in set(vars(record)) - _RECORD_ATTRS:
            setattr(record, key, redact_value(key, getattr(record, key)))
        return True


def _iso_utc(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


class BotsysJsonFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, message, replica, then context/extras."""

    def __init__(self) -> None:
        super().__init__(
            "%(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            reserved_attrs=[a for a in _RECORD_ATTRS if a not in ("message",)],
            json_ensure_ascii=False,
        )

    def add_fields(self, log_data: dict, record: logging.LogRecord, message_dict: dict) -> None:
        super().add_fields(log_data, record, message_dict)
        ordered = {
            "time": _iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": log_data.pop("message", record.getMessage()),
            "replica": log_data.pop("replica", getattr(record, "replica", "")),
        }
        log_data.pop("level", None)
        log_data.pop("logger", None)
        tail = dict(log_data)
        log_data.clear()
        log_data.update(ordered, **tail)

    def formatException(self, ei) -> str:  # noqa: N802 - logging's name
        return redact_text(super().formatException(ei))


class TextFormatter(logging.Formatter):
    """``2025-01-02T03:04:05.678Z INFO  botsys.engine [replica] message job_id=… bot_type=…``"""

    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(
            f"{key}={getattr(record, key)}" for key in CONTEXT_FIELDS if hasattr(record, key)
        )
        line = (
            f"{_iso_utc(record.created)} {record.levelname:<7} {record.name} "
            f"[{getattr(record, 'replica', '')}] {record.getMessage()}"
        )
        if ids:
            line = f"{line} {ids}"
        if record.exc_info:
            line = f"{line}\n{redact_text(self.formatException(record.exc_info))}"
        return line


def setup_logging(
    level: str | int = "INFO", fmt: str = "json", replica: str = "", stream: TextIO | None = None
) -> logging.Handler:
    """Configure the root logger once; calling again replaces botsys's handler, never adds one."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stdout if stream is None else stream)
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(ContextFilter(replica))
    handler.setFormatter(TextFormatter() if fmt == "text" else BotsysJsonFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    logging.captureWarnings(True)
    return handler
