"""Bot discovery: names are identifiers found in a listing, never paths."""

from __future__ import annotations

import json

import pytest

from botsys.runners.registry import BotRegistry, UnknownBot

from .conftest import BUNDLED_BOTS, write_bot


@pytest.fixture
def registry(settings, bots_dir):
    write_bot(bots_dir, "python", "simulate", "print('{}')")
    write_bot(bots_dir, "python", "data_analysis", "print('{}')")
    (bots_dir / "python" / "notes.txt").write_text("not a bot")
    (bots_dir / "python" / "bad-name.py").write_text("not an identifier")
    return BotRegistry(settings)


@pytest.mark.parametrize(
    "name",
    [
        "../python/simulate",
        "..",
        "/etc/passwd",
        "simulate/../../x",
        "simulate.py",
        "bad-name",
        "a" * 65,
        "sïmulate",
        "simulate\0",
        " simulate",
        "9lives",
    ],
)
def test_traversal_and_odd_names_are_refused(registry, name):
    with pytest.raises(UnknownBot) as err:
        registry.resolve("python", name)
    assert err.value.field == "bot"
    assert err.value.available == ["data_analysis", "simulate"]


def test_unknown_bot_lists_what_exists(registry):
    with pytest.raises(UnknownBot) as err:
        registry.resolve("python", "x")
    assert str(err.value) == "unknown bot 'x' for type python; available: data_analysis, simulate"
    assert isinstance(err.value, ValueError)


def test_unknown_type_lists_types(registry):
    with pytest.raises(UnknownBot) as err:
        registry.resolve("cobol", None)
    assert err.value.field == "botType"
    assert err.value.available == ["bash", "java", "node", "python"]
    assert "available: bash, java, node, python" in str(err.value)


def test_default_bot_and_path(registry, bots_dir):
    ref = registry.resolve("python", None)
    assert (ref.bot_type, ref.name) == ("python", "simulate")
    assert ref.path == (bots_dir / "python" / "simulate.py").resolve()


def test_new_and_removed_bots_are_seen_without_restart(registry, bots_dir):
    assert registry.bots("python") == ["data_analysis", "simulate"]
    write_bot(bots_dir, "python", "fresh", "print()")
    assert registry.resolve("python", "fresh").name == "fresh"
    (bots_dir / "python" / "fresh.py").unlink()
    with pytest.raises(UnknownBot):
        registry.resolve("python", "fresh")


def test_missing_type_folder_is_empty_not_an_error(registry):
    assert registry.bots("node") == []
    with pytest.raises(UnknownBot, match=r"available: \(none\)"):
        registry.resolve("node", None)


def test_describe_is_json(registry):
    described = {t["botType"]: t for t in json.loads(json.dumps(registry.describe()))}
    assert described["python"]["bots"] == ["data_analysis", "simulate"]
    assert described["python"]["limit"] == 5 and described["python"]["defaultBot"] == "simulate"
    assert set(described) == {"bash", "java", "node", "python"}


def test_bundled_bots_are_found_from_any_working_directory(monkeypatch, tmp_path):
    from botsys.config import load_settings

    monkeypatch.chdir(tmp_path)  # bots_dir "" = the bots bundled in the package
    registry = BotRegistry(load_settings(environ={}))
    # In place, or their copy when the bot user cannot read the checkout (runners/bundled.py).
    assert registry.root == BUNDLED_BOTS or registry.root.parent.name == "bundled"
    for bot_type in ("python", "node", "java"):
        assert {"hello", "simulate"} <= set(registry.bots(bot_type))


def test_a_trailing_newline_is_not_part_of_a_name(registry, bots_dir):
    # `$` matches before a final "\n": names are matched whole (fullmatch), so "nl\n" is no bot.
    (bots_dir / "python" / "nl\n.py").write_text("print('{\"result\": 1}')")
    assert "nl\n" not in registry.bots("python") and "nl" not in registry.bots("python")
    for name in ("nl\n", "simulate\n"):
        with pytest.raises(UnknownBot, match="invalid bot name"):
            registry.resolve("python", name)
