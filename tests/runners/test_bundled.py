"""The bundled bots run from where the bot user can read them: a package installed under a
0700 folder (a venv under /root, a CI folder) is copied once into the cache folder."""

from __future__ import annotations

import pwd
import shutil
from pathlib import Path

import pytest

from botsys.config import BUNDLED_BOTS
from botsys.runners.bundled import bundled_bots
from botsys.runners.registry import BotRegistry
from botsys.runners.users import BotUser, blocked_at
from tests.faults.containment import BOT_USER, open_folder
from tests.support.requires import require, require_root

from .conftest import make_settings


@pytest.fixture
def user() -> BotUser:
    require_root("bot users need the server as root")
    require(BOT_USER in {p.pw_name for p in pwd.getpwall()}, f"no {BOT_USER} user")
    entry = pwd.getpwnam(BOT_USER)
    return BotUser(BOT_USER, entry.pw_uid, entry.pw_gid)


@pytest.fixture
def folders():
    """(a package folder the bot user cannot enter, a cache folder it can read)."""
    top = open_folder()
    private = top / "private"
    private.mkdir(mode=0o700)
    shutil.copytree(BUNDLED_BOTS, private / "bots")
    yield private / "bots", top / "cache"
    shutil.rmtree(top, ignore_errors=True)


def settings_for(cache: Path, bot_user: str):
    return make_settings(Path("unused"), cache, **{"runner.bot_user": bot_user})


def test_unreadable_bundled_bots_run_from_a_readable_copy(user, folders):
    source, cache = folders
    assert blocked_at(source, user, 0o5) is not None  # the trap this avoids
    copy = bundled_bots(settings_for(cache, BOT_USER), source)
    assert copy.parent == cache / "bundled" and copy != source
    files = sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file())
    assert files and sorted(p.relative_to(copy) for p in copy.rglob("*") if p.is_file()) == files
    for name in files:
        assert (copy / name).read_bytes() == (source / name).read_bytes()
        assert blocked_at(copy / name, user, 0o4) is None, name
    assert bundled_bots(settings_for(cache, BOT_USER), source) == copy  # made once
    registry = BotRegistry(settings_for(cache, BOT_USER), copy)
    assert "data_analysis" in registry.bots("python")


def test_a_changed_bundled_bot_gets_a_fresh_copy(user, folders):
    source, cache = folders
    first = bundled_bots(settings_for(cache, BOT_USER), source)
    (source / "python" / "hello.py").write_text("print('changed')\n")
    second = bundled_bots(settings_for(cache, BOT_USER), source)
    assert second != first and (second / "python" / "hello.py").read_text() == "print('changed')\n"


def test_readable_bundled_bots_or_bots_run_as_the_server_are_used_in_place(folders):
    source, cache = folders
    assert bundled_bots(settings_for(cache, ""), source) == source  # no bot user
    assert bundled_bots(settings_for(cache, ""), BUNDLED_BOTS) == BUNDLED_BOTS
    assert not cache.exists()
