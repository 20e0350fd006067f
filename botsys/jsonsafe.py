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

    Iterative, so a deeply nested value cannot exhaust the stack."""
    stack: list[tuple[str, Any, int]] = [(root, value, 0)]
    while stack:
        path, item, depth = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return path, "number out of range (NaN or Infinity are not JSON numbers)"
        if isinstance(item, str) and not _is_unicode(item):
            return path, "string contains a lone surrogate (not valid Unicode)"
        if isinstance(item, dict | list) and depth >= max_depth:
            return path or "body", f"nested deeper than {max_depth} levels"
        if isinstance(item, dict):
            for key, child in item.items():
                if not _is_unicode(key):
                    return path or "body", "key contains a lone surrogate (not valid Unicode)"
                stack.append((_join(path, key), child, depth + 1))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", child, depth + 1) for i, child in enumerate(item))
    return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _is_unicode(text: str) -> bool:
    # A lone surrogate is the only thing a decoded JSON string can hold that UTF-8 cannot.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
