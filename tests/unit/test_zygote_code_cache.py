"""Which scripts the zygote compiles ahead for its bots (zygote_main.Zygote.compile_ahead): only
those the bot user could read itself, judged by the file's and its folders' modes, since the
zygote reads as root; a version that changed or does not compile is left to the bots."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from botsys.runners import zygote_main
from botsys.runners.zygote_main import CODE, Zygote

BOT_UID, BOT_GID = 54321, 54321  # nobody's: the modes decide


@pytest.fixture(autouse=True)
def empty_cache():
    CODE.clear()
    yield
    CODE.clear()


class StandIn:
    """Zygote's code-cache methods on what they read: the plan."""

    def __init__(self, user=(BOT_UID, BOT_GID)):
        self.plan = {"user": list(user) if user else None}

    bot_may_read = Zygote.bot_may_read
    compile_ahead = Zygote.compile_ahead


@pytest.fixture
def open_dir():
    """A folder others may enter, under /tmp (pytest's own are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="botsys-code-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path)


def script_in(folder: Path, mode: int, folder_mode: int = 0o755, text: str = "x = 1\n") -> str:
    folder.mkdir(mode=folder_mode)
    os.chmod(folder, folder_mode)
    path = folder / "bot.py"
    path.write_text(text)
    os.chmod(path, mode)
    return str(path)


def compiled(script: str, z: StandIn | None = None) -> bool:
    (z or StandIn()).compile_ahead(script)
    return CODE[script][1] is not None


@pytest.mark.parametrize(
    ("mode", "folder_mode", "readable"),
    [
        (0o644, 0o755, True),
        (0o640, 0o755, False),  # root's group, not the bot's
        (0o600, 0o755, False),
        (0o644, 0o750, False),  # a folder the bot user cannot enter
        (0o644, 0o711, True),  # searchable is enough
    ],
)
def test_only_what_the_bot_user_may_read_is_compiled(open_dir, mode, folder_mode, readable):
    assert compiled(script_in(open_dir / "bots", mode, folder_mode)) is readable


def test_a_link_is_judged_by_its_targets_folders(open_dir):
    hidden = script_in(open_dir / "hidden", 0o644, 0o700)
    (open_dir / "bots").mkdir(mode=0o755)
    link = open_dir / "bots" / "bot.py"
    link.symlink_to(hidden)
    assert not compiled(str(link))


def test_owner_and_group_modes_count_for_the_bot_user(open_dir):
    script = script_in(open_dir / "bots", 0o600)
    st = os.stat(script)
    as_owner, as_group = StandIn((st.st_uid, 1)), StandIn((1, st.st_gid))
    assert as_owner.bot_may_read(script, st) and not as_group.bot_may_read(script, st)
    os.chmod(script, 0o040)
    st = os.stat(script)
    assert as_group.bot_may_read(script, st)
    assert not as_owner.bot_may_read(script, st)  # the owner's bits rule for the owner


def test_bots_running_as_the_server_get_every_script_it_can_read(tmp_path):
    assert compiled(script_in(tmp_path / "bots", 0o600, 0o700), StandIn(user=None))


def test_an_edit_makes_a_new_version_and_what_does_not_compile_is_left(tmp_path):
    z = StandIn(user=None)
    script = script_in(tmp_path / "bots", 0o644, text="x = 1\n")
    assert compiled(script, z)
    first = CODE[script][1]
    z.compile_ahead(script)
    assert CODE[script][1] is first  # unchanged: not compiled again
    # each version a different size: the key is the file's stat, whose times may not tick
    # between two writes this close together on older kernels
    Path(script).write_text("x = (\n\n")
    assert not compiled(script, z)  # the bots compile it and report the SyntaxError
    Path(script).write_text("x = 222\n")
    assert compiled(script, z) and CODE[script][1] is not first


def test_big_scripts_and_a_full_cache(tmp_path, monkeypatch):
    z = StandIn(user=None)
    big = script_in(tmp_path / "big", 0o644, text="x = 1\n" * 10)
    monkeypatch.setattr(zygote_main, "CODE_MAX_BYTES", 20)
    assert not compiled(big, z)
    monkeypatch.setattr(zygote_main, "CODE_MAX_BYTES", 1 << 20)
    monkeypatch.setattr(zygote_main, "CODE_MAX_SCRIPTS", 3)
    scripts = [script_in(tmp_path / f"b{i}", 0o644) for i in range(4)]
    for s in scripts:
        z.compile_ahead(s)
    assert list(CODE) == scripts[1:]  # the oldest went first
    monkeypatch.setattr(zygote_main, "CODE_MAX_SCRIPTS", 32)
    size = os.stat(scripts[0]).st_size
    monkeypatch.setattr(zygote_main, "CODE_MAX_TOTAL", 2 * size)  # the code of two scripts
    z.compile_ahead(scripts[0])
    assert list(CODE) == [scripts[3], scripts[0]]  # the oldest went until two fit
