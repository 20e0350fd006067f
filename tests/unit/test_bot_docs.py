"""A bot's header (docstring or leading comments) gives its summary and expected payload."""

from __future__ import annotations

import pytest

from botsys.config import BUNDLED_BOTS
from botsys.runners.bot_docs import bot_doc

PY = '''"""greet: says hello.

Payload: {"name": "..."}  (required)
Result:  {"greeting": "..."}
"""
import json
'''

JS = """#!/usr/bin/env node
// greet: says hello.
//
// Payload:
//   name    who to greet (required)
//   loud    true for capitals
// Result: {"greeting": "..."}
const x = 1;
// Payload: not the header any more
"""


def test_python_docstring(tmp_path):
    path = tmp_path / "greet.py"
    path.write_text(PY)
    assert bot_doc(path) == {"summary": "says hello.", "payload": '{"name": "..."}  (required)'}


def test_comment_header_keeps_a_field_table(tmp_path):
    path = tmp_path / "greet.js"
    path.write_text(JS)
    doc = bot_doc(path)
    assert doc["summary"] == "says hello."
    assert doc["payload"] == "name    who to greet (required)\nloud    true for capitals"


def test_no_header_and_a_missing_file_say_nothing(tmp_path):
    path = tmp_path / "bare.py"
    path.write_text("print(1)\n")
    assert bot_doc(path) == {"summary": "", "payload": ""}
    assert bot_doc(tmp_path / "gone.py") == {"summary": "", "payload": ""}


@pytest.mark.parametrize("path", sorted(BUNDLED_BOTS.glob("*/*.*")), ids=lambda p: p.name)
def test_every_bundled_bot_documents_its_payload(path):
    doc = bot_doc(path)
    assert doc["summary"] and doc["payload"], f"{path}: header needs a summary and a Payload:"
