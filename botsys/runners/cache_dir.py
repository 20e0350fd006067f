"""The runner's cache folder (compiled bots, the launcher) and the check that keeps it ours."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class UnsafeFolder(OSError):
    """Another user could write there: whatever we would run from it could be theirs."""


def default_cache_dir(configured: str) -> Path:
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "botsys-cache"


def private_folder(path: Path) -> Path:
    """Create ``path``; refuse it if it or its parent is not ours or is writable by others."""
    path.mkdir(parents=True, exist_ok=True, mode=0o755)
    for folder in (path, path.parent):
        st = folder.stat()
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            raise UnsafeFolder(f"cache folder {folder} is writable by others or not ours")
    return path
