"""The dashboard's state names come from the server's enums (botsys/states.py): the generated
states.js defines them, and app.js and index.html keep no copy of their own."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from botsys.dashboard import HERE, STATIC_PATH
from botsys.states import RETRYABLE, TERMINAL, DeliveryState, JobState
from tests.support.requires import require_tool

EVERY_STATE = [*JobState, *DeliveryState]


def defined_states(script: str) -> dict:
    """Runs the served script in node, as the page runs it, and returns its STATES."""
    node = require_tool("node", "apt-get install nodejs")
    program = script + "\nprocess.stdout.write(JSON.stringify(STATES));\n"
    out = subprocess.run([node, "-e", program], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


async def test_states_js_defines_the_enums_lists(client):
    r = await client.get(f"{STATIC_PATH}/states.js")
    assert r.status == 200 and r.content_type == "text/javascript"
    assert defined_states(await r.text()) == {
        "job": [s.value for s in JobState],
        "terminal": [s.value for s in TERMINAL],
        "retryable": [s.value for s in RETRYABLE],
        "delivery": [s.value for s in DeliveryState],
    }


def test_the_page_loads_states_js_before_app_js():
    page = (HERE / "index.html").read_text()
    assert page.index(f"{STATIC_PATH}/states.js") < page.index(f"{STATIC_PATH}/app.js")


@pytest.mark.parametrize("name", ["app.js", "index.html"])
def test_no_list_of_states_is_written_by_hand(name):
    """A list (JS array, or HTML options) naming two or more states is a copy that would drift
    from the enums; single comparisons (``d.state === "pending"``) are fine."""
    source = (HERE / name).read_text()
    word = "|".join(EVERY_STATE)
    arrays = re.findall(rf"\[[^\[\]]*\"(?:{word})\"[^\[\]]*\"(?:{word})\"[^\[\]]*\]", source)
    options = re.findall(rf'<option value="(?:{word})"', source)
    assert arrays == [] and options == []
