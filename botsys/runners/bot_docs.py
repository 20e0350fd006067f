"""What a bot says about itself: the comment or docstring at the top of its file.

The convention (docs/BOTS.md): the first line is ``name: what it does``; a ``Payload:`` paragraph
says what the job's payload must hold; a ``Result:`` paragraph what comes back. ``botsys bots``
and ``GET /bots`` show the summary and the payload text, so a client needs no source to call a bot.
"""

from __future__ import annotations

import functools
import os
import re
import textwrap
from pathlib import Path

_HEAD_BYTES = 4096  # the header sits at the top; never read a whole large script
_COMMENT = re.compile(r"^\s*(//|#(?!!))\s?(.*)$")
_SECTION = re.compile(r"^(Payload|Result)\b([^:]*):\s*(.*)$")


_START = re.compile(r"^Start:\s*(spawn|fork)\s*$", re.IGNORECASE)  # a header line


def bot_start(path: Path) -> str | None:
    """A bot's own ``Start: spawn|fork`` header line (docs/BOTS.md), else None (its type's)."""
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        return None
    return _cached_start(str(path), mtime)


@functools.lru_cache(maxsize=512)
def _cached_start(path: str, mtime_ns: int) -> str | None:
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = header_lines(fh.read(_HEAD_BYTES))
    for line in lines:
        match = _START.match(line.strip())
        if match:
            return match.group(1).lower()
    return None


def bot_doc(path: Path) -> dict[str, str]:
    """``{"summary", "payload"}`` of a bot file ("" where the header says nothing)."""
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        return {"summary": "", "payload": ""}
    return dict(_cached_doc(str(path), mtime))


@functools.lru_cache(maxsize=512)
def _cached_doc(path: str, mtime_ns: int) -> tuple[tuple[str, str], ...]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = header_lines(fh.read(_HEAD_BYTES))
    return (("summary", _summary(lines)), ("payload", _section(lines, "Payload")))


def header_lines(text: str) -> list[str]:
    """The leading docstring (Python) or run of comment lines (any language), unmarked."""
    stripped = text.lstrip()
    if stripped.startswith(('"""', "'''")):
        quote = stripped[:3]
        end = stripped.find(quote, 3)
        return stripped[3 : end if end > 0 else None].splitlines()
    lines = []
    for line in text.splitlines():
        match = _COMMENT.match(line)
        if match is None:
            if lines or (line.strip() and not line.startswith("#!")):
                break
            continue  # blank lines and a shebang before the header
        lines.append(match.group(2))
    return lines


def _summary(lines: list[str]) -> str:
    first = lines[0].strip() if lines else ""
    name, sep, rest = first.partition(": ")
    return rest.strip() if sep and " " not in name else first


def _section(lines: list[str], wanted: str) -> str:
    """The paragraph that starts with ``wanted``, up to the next section or a blank line; its
    lines keep their layout (field tables are aligned) without the common indentation."""
    first, rest, inside = "", [], False
    for line in lines:
        match = _SECTION.match(line.strip())
        if match:
            if inside:
                break
            inside = match.group(1) == wanted
            first = " ".join(match.group(2, 3)).strip() if inside else first
        elif inside:
            if not line.strip():
                break
            rest.append(line.rstrip())
    body = textwrap.dedent("\n".join(rest))
    return "\n".join(part for part in (first, body) if part)
