"""Helpers of the containment proofs: a folder the bot user can read, holding copies of the
probe bots, and the /proc scans that find what a probe left behind."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from tests.support.timing import MARGIN_S

PROBES = Path(__file__).resolve().parent / "bots"
BOT_USER = "botsys-bot"
EXT = {"python": ".py", "node": ".js", "java": ".java"}


def open_folder() -> Path:
    """A new folder anyone may enter and read (pytest's tmp folders are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="botsys-contain-"))
    path.chmod(0o755)
    return path


def copy_probes(bots: Path, *names: str) -> Path:
    for bot_type, ext in EXT.items():
        folder = bots / bot_type
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)
        for name in names:
            shutil.copy(PROBES / bot_type / f"{name}{ext}", folder)
    return bots


def processes_with(cmdline: bytes) -> list[int]:
    """Live (not zombie) processes whose NUL-separated command line contains ``cmdline``."""
    found = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            line = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if cmdline in line and state != "Z":
            found.append(int(pid))
    return found


def daemons(token: str) -> list[int]:
    """The escape probe's daemons: ``sleep <token>``."""
    return processes_with(f"sleep\0{token}\0".encode())


def left_after(find, within_s: float = MARGIN_S) -> list[int]:
    """Polls ``find()`` until it is empty or ``within_s`` has passed; what is still there.
    A loaded machine may take a while to reap; an escaped daemon sleeps 300 s and still fails."""
    deadline = time.monotonic() + within_s
    while (left := find()) and time.monotonic() < deadline:
        time.sleep(0.005)
    return left
