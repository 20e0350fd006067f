"""Builds ``launch.c`` once per source version into the runner's cache folder.

The launcher replaces the two-program chain (setpriv, then prlimit) with one exec. It is
compiled with the machine's C compiler the first time a server needs it; the binary's name
carries a hash of the source, so an upgrade builds a new one and never runs a stale one.
Several servers starting at once may each compile; the atomic rename keeps whichever lands.
Without a compiler, or if the build or its probe fails, ``None``: the chain is used instead.
An image without a compiler ships one prebuilt next to the source (see the Dockerfile).

Linked statically where the C library allows it: a static binary skips the dynamic loader,
which was ~0.3 ms of every bot's start here (bench/spawn.py "wrappers" column); without a
static libc (e.g. glibc-static not installed) it is linked dynamically.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from pathlib import Path

from botsys.runners.cache_dir import UnsafeFolder, private_folder

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("launch.c")
# Tried in order; the first that compiles is kept. Part of the binary's name (with the source).
FLAGS = (("-O2", "-static"), ("-O2",))
PREBUILT = SOURCE.with_name("botsys-launch")  # the Dockerfile compiles it here


def build_launcher(cache_dir: Path) -> str | None:
    """The launcher's path, compiling it first if needed; None if it cannot be had."""
    if _ours(PREBUILT) and probe(str(PREBUILT)):
        return str(PREBUILT)
    source = SOURCE.read_bytes()
    try:
        folder = private_folder(cache_dir / "launcher")  # nobody else can plant a binary
    except (UnsafeFolder, OSError) as exc:
        log.warning("not building the bot launcher: %s", exc)
        return None
    version = hashlib.sha256(source + repr(FLAGS).encode()).hexdigest()[:12]
    target = folder / f"botsys-launch-{version}"
    if not _ours(target):
        compiler = shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            return None
        if not _compile(compiler, target):
            return None
    return str(target) if probe(str(target)) else None


def probe(launcher: str, *options: str) -> bool:
    """Does it run a command under a limit (and ``options``), as this process's child?"""
    true = shutil.which("true") or "/bin/true"
    argv = [launcher, str(os.getpid()), "core=0", *options, "--", true]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _ours(path: Path) -> bool:
    """Owned by us (or root) and writable by nobody else; absent: False."""
    try:
        st = path.stat()
    except OSError:
        return False
    owner_ok = st.st_uid in (0, os.geteuid())
    return owner_ok and not st.st_mode & 0o022 and os.access(path, os.X_OK)


def _compile(compiler: str, target: Path) -> bool:
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    try:
        for flags in FLAGS:
            done = subprocess.run(
                [compiler, *flags, "-o", str(partial), str(SOURCE)],
                capture_output=True,
                text=True,
                timeout=60,
            )
            if done.returncode == 0:
                os.replace(partial, target)
                return True
        log.warning("could not build the bot launcher (%s): %s", compiler, done.stderr[-500:])
        return False
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("could not build the bot launcher: %s", exc)
        return False
    finally:
        partial.unlink(missing_ok=True)
