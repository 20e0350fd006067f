"""A bot type made at runtime (control/): its bots come from its runtime's folder, narrowed by
an allow-list, or from a folder of its own; it runs in its runtime's sandbox. The catalog's
live view is what the registry and the runner read, so a change shows without a restart."""

from __future__ import annotations

import dataclasses

import pytest

from botsys.control.catalog import TypeCatalog
from botsys.control.type_store import Record
from botsys.control.types import TypeDef
from botsys.runners.process import ProcessRunner
from botsys.runners.registry import BotRegistry, UnknownBot
from botsys.runners.types import AttemptSpec

from .conftest import write_bot


@pytest.fixture
def catalog(settings, bots_dir):
    for name in ("simulate", "hello", "data_analysis"):
        write_bot(bots_dir, "python", name, "import json; print(json.dumps({'result': 1}))")
    return TypeCatalog(settings.bot_types)


def put(catalog: TypeCatalog, typedef: TypeDef, version: int = 1) -> None:
    catalog.apply(version, {typedef.name: Record(version, typedef.body())})


def test_an_allow_list_narrows_the_runtime_folder(settings, catalog):
    registry = BotRegistry(dataclasses.replace(settings, bot_types=catalog.live))
    put(catalog, TypeDef("reports", "python", bots=("hello", "data_analysis")))
    assert registry.bots("reports") == ["data_analysis", "hello"]
    assert registry.resolve("reports").name == "hello", "its default: the list's first"
    with pytest.raises(UnknownBot) as err:
        registry.resolve("reports", "simulate")
    assert err.value.field == "bot" and err.value.available == ["data_analysis", "hello"]
    put(catalog, TypeDef("reports", "python", bots=("simulate",)), version=2)
    assert registry.bots("reports") == ["simulate"], "a changed allow-list shows at once"


def test_a_folder_of_its_own(settings, catalog, tmp_path):
    own = tmp_path / "own"
    write_bot(own, "python", "special", "print('{}')")
    registry = BotRegistry(dataclasses.replace(settings, bot_types=catalog.live))
    put(catalog, TypeDef("special", "python", bots_dir=str(own / "python")))
    assert registry.bots("special") == ["special"]


async def test_it_runs_with_its_runtimes_command(start_mode, settings, catalog):
    live = dataclasses.replace(settings, bot_types=catalog.live)
    runner = ProcessRunner(live)
    put(catalog, TypeDef("reports", "python", bots=("hello",), timeout_ms=5000))
    spec = AttemptSpec("reports-01JD00000000000000000000AA", "reports", "hello", {}, 1, 5.0)

    class Sink:
        def started(self, pid):
            pass

        def progress(self, percent):
            pass

        def log(self, text):
            pass

    outcome = await runner.run(spec, Sink())
    assert (outcome.status, outcome.result) == ("succeeded", 1), outcome
    # forked from its runtime's zygote, started for it: the same sandbox, no zygote of its own
    forked = runner.zygotes.running("python") is not None
    assert forked == (start_mode == "fork") and runner.zygotes.running("reports") is None
