"""Who runs a type's bots, and the start-up check that this user can reach what they need.

A server running as root never runs bots as root by default: a type's ``run_as``, else
``runner.bot_user`` (``botsys-bot``, created by scripts/setup.sh and the Dockerfile). Only an
explicit ``runner.bot_user = ""`` (or ``run_as = "root"``) runs them as root, with a warning.

That user usually cannot enter /root, where a venv's interpreter may live: every bot would
fail with "permission denied". So at start-up, for each type, the user's access to the command,
the bots folder, the temp folder and the build cache is checked along each path (owner, group
and other bits; supplementary groups are not counted, so it errs towards refusing), and
``{python}`` becomes the first interpreter the user can run (the server's own, else the
system's). Anything else out of reach stops start-up with one line naming the path and the fix.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from botsys.config import BotTypeSettings, ConfigError, RunnerSettings

log = logging.getLogger(__name__)

# {python} for a bot user who cannot run the server's own interpreter (bundled bots use only
# the standard library).
SYSTEM_PYTHONS = ("/usr/local/bin/python3", "/usr/bin/python3")
CREATE_USER = "useradd --system --no-create-home --shell /usr/sbin/nologin"


@dataclass(frozen=True)
class BotUser:
    name: str
    uid: int
    gid: int


def bot_user(bt: BotTypeSettings, runner: RunnerSettings) -> BotUser | None:
    """The user the type's bots run as; None: as the server itself."""
    root = os.geteuid() == 0
    name = bt.run_as or (runner.bot_user if root else "")
    key = f"bot_types.{bt.name}.run_as" if bt.run_as else "runner.bot_user"
    if not name:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ConfigError(
            f"{key} = {name!r}: no such user; create it ({CREATE_USER} {name}; "
            "scripts/setup.sh does) or name another one"
        ) from None
    if not root:
        raise ConfigError(f"{key} = {name!r}: needs the server as root")
    if entry.pw_uid == 0:
        return None  # asked for root by name
    return BotUser(name, entry.pw_uid, entry.pw_gid)


def blocked_at(path: Path, user: BotUser, final: int) -> Path | None:
    """The first item along ``path`` (resolved) that ``user`` cannot pass: search (x) on each
    folder, ``final`` (0o4 read, 0o1 execute, or both) on the last item. None: reachable."""
    real = path.resolve()
    for item in (*reversed(real.parents), real):
        try:
            st = item.stat()
        except OSError:
            return item
        shift = 6 if st.st_uid == user.uid else 3 if st.st_gid == user.gid else 0
        want = final if item == real else 0o1
        if (st.st_mode >> shift) & want != want:
            return item
    return None


def interpreter_for(user: BotUser | None) -> str:
    """``{python}``: the server's interpreter, or the first system one the user can run."""
    if user is None or blocked_at(Path(sys.executable), user, 0o1) is None:
        return sys.executable
    for candidate in SYSTEM_PYTHONS:
        if os.path.exists(candidate) and blocked_at(Path(candidate), user, 0o1) is None:
            log.info(
                "bots run as %r cannot run %s: {python} is %s for them",
                user.name,
                sys.executable,
                candidate,
            )
            return candidate
    raise ConfigError(
        f"{user.name!r} cannot run {sys.executable} (the server's interpreter) and no system "
        f"python3 ({', '.join(SYSTEM_PYTHONS)}) exists: install python3, or put botsys's venv "
        "where that user can enter (not under /root)"
    )


def check_reach(bt: BotTypeSettings, user: BotUser, needs: dict[str, tuple[Path, int]]) -> None:
    """ConfigError if ``user`` cannot reach one of ``needs`` (what → (path, final bits))."""
    for what, (path, final) in needs.items():
        blocked = blocked_at(path, user, final)
        if blocked is not None:
            raise ConfigError(
                f"bot_types.{bt.name}: bots run as {user.name!r} cannot reach {what} {path} "
                f"(no access to {blocked}): make it readable by that user (chmod o+rx), move "
                "it, or set run_as / runner.bot_user"
            )


def command_path(argv0: str, search_path: str) -> Path | None:
    """Where the bot's command is, as the bot would find it; None: not installed."""
    found = shutil.which(argv0, path=search_path)
    return Path(found) if found else None


def temp_root() -> Path:
    return Path(tempfile.gettempdir())
