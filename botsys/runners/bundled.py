"""The bundled bots, where the bot user can read them.

They ship inside the package, and the package often lives where an unprivileged bot user
cannot enter: a venv under /root (mode 0700), a pytest or CI folder under /tmp/pytest-of-root.
A root server whose bots run as ``runner.bot_user`` would then refuse to start. Instead, the
bundled bots are copied once (per content) into the runner's cache folder, which is ours,
writable by nobody else and readable by all, and run from there. A bots folder of your own
(``runner.bots_dir``) is never copied: the start-up check names it and the fix.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

from botsys.config import BUNDLED_BOTS, ConfigError, Settings
from botsys.runners.cache_dir import default_cache_dir, private_folder
from botsys.runners.users import blocked_at, bot_user

log = logging.getLogger(__name__)


def bundled_bots(settings: Settings, source: Path = BUNDLED_BOTS) -> Path:
    """``source``, or its copy in the cache folder when a type's bot user cannot read it."""
    if all(_readable(source, settings, t) for t in settings.bot_types):
        return source
    copy = staged_copy(source, default_cache_dir(settings.runner.cache_dir))
    log.info("bundled bots run from %s: the bot user cannot read %s", copy, source)
    return copy


def _readable(source: Path, settings: Settings, bot_type: str) -> bool:
    try:
        user = bot_user(settings.bot_types[bot_type], settings.runner)
    except ConfigError:
        return True  # the sandbox's start-up check reports it, with its fix
    return user is None or blocked_at(source, user, 0o5) is None


def staged_copy(source: Path, cache_dir: Path) -> Path:
    """``<cache_dir>/bundled/<digest of the files>``: made once, atomically, read-only for all;
    a changed bot gets a new folder."""
    files = sorted(p for p in source.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(source)}\0".encode() + path.read_bytes() + b"\0")
    target = private_folder(cache_dir / "bundled") / digest.hexdigest()[:16]
    if target.is_dir():
        return target
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    for path in files:
        dest = partial / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        shutil.copyfile(path, dest)
        dest.chmod(0o644)
    for folder in (partial, *(p for p in partial.rglob("*") if p.is_dir())):
        folder.chmod(0o755)  # whatever the umask: the bot user lists and reads them
    try:
        partial.rename(target)  # atomic: a replica starting beside us sees all or nothing
    except OSError:  # another process made it first: same content
        shutil.rmtree(partial, ignore_errors=True)
    return target
