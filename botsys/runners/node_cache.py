"""Node's on-disk compile cache (NODE_COMPILE_CACHE, Node ≥ 22.1) for the types that run node.

Node 20 has nothing equivalent that is safe for any bot: a startup snapshot (--snapshot-blob)
runs the bot's own code at build time, and its flags that skip work (--jitless, --no-opt,
--v8-pool-size=0, --max-semi-space-size) measured no faster for hello.js here (bench notes in
docs/BOTS.md). So a type gets the cache only when its node is new enough, in a folder of its
own that its bot user owns (node writes the cache as that user), unless the type's ``env``
sets NODE_COMPILE_CACHE (or NODE_DISABLE_COMPILE_CACHE) itself.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

COMPILE_CACHE_SINCE = (22, 1)
_VERSION = re.compile(r"v?(\d+)\.(\d+)")


def runs_node(command: list[str]) -> bool:
    return bool(command) and os.path.basename(command[0]) == "node"


@functools.cache
def node_version(argv0: str, path: str) -> str:
    """``node --version`` ("v20.20.2"), once per binary; "" if it cannot be run."""
    found = shutil.which(argv0, path=path)
    if found is None:
        return ""
    try:
        run = subprocess.run([found, "--version"], capture_output=True, timeout=10, env={})
    except (OSError, subprocess.SubprocessError):
        return ""
    return run.stdout.decode(errors="replace").strip() if run.returncode == 0 else ""


def has_compile_cache(version: str) -> bool:
    match = _VERSION.match(version)
    return bool(match) and (int(match[1]), int(match[2])) >= COMPILE_CACHE_SINCE


def compile_cache_env(
    version: str, folder: Path, type_env: dict[str, str], owner: tuple[int, int] | None
) -> dict[str, str]:
    """``{"NODE_COMPILE_CACHE": folder}`` when ``version`` has the cache and the type's env
    leaves it to us (the folder is created, owned by ``owner`` (uid, gid) if given); else {}."""
    if not has_compile_cache(version):
        return {}
    if "NODE_COMPILE_CACHE" in type_env or "NODE_DISABLE_COMPILE_CACHE" in type_env:
        return {}
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if owner is not None:
            os.chown(folder, *owner)
    except OSError as exc:
        log.warning("node compile cache off: %s", exc)
        return {}
    return {"NODE_COMPILE_CACHE": str(folder)}
