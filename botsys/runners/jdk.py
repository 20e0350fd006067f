"""Which JDK runs java bots: ``runner.java`` (a JDK home or its ``java``), or the newest found.

"" picks the highest version among JAVA_HOME and the JDKs under /usr/lib/jvm (a newer JDK
starts faster, and JDK 25 can keep an ahead-of-time class cache: class_archive.py), else
``java``/``javac`` on PATH. The version comes from the JDK's ``release`` file: no JVM is
started to find it.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from botsys.config import ConfigError

JVM_ROOT = Path("/usr/lib/jvm")
_VERSION = re.compile(r'^JAVA_VERSION="([^"]+)"', re.M)


@dataclass(frozen=True)
class Jdk:
    java: str  # the java binary that {java} stands for
    javac: str  # its javac, or "javac" on PATH if the JDK has none (a JRE)
    version: str  # "25.0.3", "17.0.15"; "" if unknown (a bare `java` on PATH)

    @property
    def feature(self) -> int:
        """The feature release (25, 17, ...; 8 for "1.8.0"); 0 if unknown."""
        key = _version_key(self.version)
        return key[0] if key else 0


def select_jdk(setting: str, environ: dict[str, str] | None = None) -> Jdk:
    """The JDK for ``{java}``/``{javac}``; a setting that names no JDK is a config error."""
    environ = os.environ if environ is None else environ
    if setting:
        jdk = jdk_at(Path(setting).expanduser())
        if jdk is None:
            raise ConfigError(f"runner.java: {setting!r} is neither a JDK home nor its bin/java")
        return jdk
    return newest_jdk(_candidates(environ)) or _on_path(environ)


@functools.cache
def cached_jdk(setting: str) -> Jdk:
    """select_jdk, once per process per setting (it reads a few small files)."""
    return select_jdk(setting)


def newest_jdk(homes: Iterable[Path]) -> Jdk | None:
    found: dict[str, Jdk] = {}
    for home in homes:
        jdk = jdk_at(home)
        if jdk is not None and jdk.version:
            found.setdefault(os.path.realpath(jdk.java), jdk)  # java-17 and java-1.17.0 links
    return max(found.values(), key=lambda j: _version_key(j.version), default=None)


def jdk_at(path: Path) -> Jdk | None:
    """The JDK whose home is ``path`` or whose ``bin/java`` it is; None if there is none."""
    home = path.parent.parent if path.name == "java" and path.parent.name == "bin" else path
    java = home / "bin" / "java"
    if not os.access(java, os.X_OK) or java.is_dir():
        return None
    javac = home / "bin" / "javac"
    return Jdk(
        java=str(java),
        javac=str(javac) if os.access(javac, os.X_OK) else "javac",
        version=read_version(home),
    )


def read_version(home: Path) -> str:
    try:
        match = _VERSION.search((home / "release").read_text(errors="replace"))
    except OSError:
        return ""
    return match.group(1) if match else ""


def _candidates(environ: dict[str, str]) -> list[Path]:
    homes = [Path(environ["JAVA_HOME"])] if environ.get("JAVA_HOME") else []
    try:
        homes += sorted(p for p in JVM_ROOT.iterdir() if p.is_dir())
    except OSError:
        pass
    return homes


def _on_path(environ: dict[str, str]) -> Jdk:
    """No JDK found by its folder: plain ``java``/``javac`` on PATH, version read if it links
    into a JDK home (Debian's /usr/bin/java → alternatives → the JDK)."""
    path = environ.get("PATH")
    java = shutil.which("java", path=path)
    if java is not None:
        jdk = jdk_at(Path(os.path.realpath(java)))
        if jdk is not None:
            return jdk
    return Jdk(java="java", javac="javac", version="")


def _version_key(version: str) -> tuple[int, ...]:
    numbers = [int(n) for n in re.findall(r"\d+", version)]
    if numbers[:1] == [1]:  # 1.8.0_392 is 8
        numbers = numbers[1:]
    return tuple(numbers)
