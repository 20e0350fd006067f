"""JDK selection (runners/jdk.py) over fake JDK homes, and on the two real JDKs here."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from botsys.config import ConfigError
from botsys.runners import jdk as jdk_module
from botsys.runners.jdk import Jdk, jdk_at, newest_jdk, select_jdk

REAL_17 = Path("/usr/lib/jvm/java-17-openjdk-amd64")
REAL_25 = Path("/usr/lib/jvm/temurin-25-jdk-amd64")


def fake_jdk(root: Path, name: str, version: str | None, javac: bool = True) -> Path:
    home = root / name
    (home / "bin").mkdir(parents=True)
    for tool in ("java", "javac") if javac else ("java",):
        path = home / "bin" / tool
        path.write_text("#!/bin/sh\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    if version is not None:
        (home / "release").write_text(f'IMPLEMENTOR="x"\nJAVA_VERSION="{version}"\n')
    return home


@pytest.fixture
def jvm_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "jvm"
    root.mkdir()
    monkeypatch.setattr(jdk_module, "JVM_ROOT", root)
    return root


def test_newest_version_wins_not_the_name(jvm_root):
    fake_jdk(jvm_root, "java-9-x", "9.0.4")
    fake_jdk(jvm_root, "java-17-x", "17.0.15")
    fake_jdk(jvm_root, "java-1.8.0-x", "1.8.0_392")
    newest = fake_jdk(jvm_root, "temurin-21", "21.0.2")
    jdk = select_jdk("", environ={"PATH": ""})
    assert jdk.java == str(newest / "bin" / "java") and jdk.feature == 21
    assert jdk.javac == str(newest / "bin" / "javac")


def test_java_home_competes_with_the_jvm_folder(jvm_root, tmp_path):
    fake_jdk(jvm_root, "java-17-x", "17.0.1")
    home = fake_jdk(tmp_path, "my-jdk", "22.0.1")
    assert select_jdk("", environ={"JAVA_HOME": str(home)}).java == str(home / "bin" / "java")
    old = fake_jdk(tmp_path, "old-jdk", "11.0.2")
    assert select_jdk("", environ={"JAVA_HOME": str(old)}).feature == 17


def test_setting_names_a_home_or_its_java(jvm_root, tmp_path):
    fake_jdk(jvm_root, "java-25-x", "25.0.1")
    home = fake_jdk(tmp_path, "pinned", "17.0.3")
    assert select_jdk(str(home)).feature == 17
    assert select_jdk(str(home / "bin" / "java")).java == str(home / "bin" / "java")


def test_setting_that_is_no_jdk_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="runner.java"):
        select_jdk(str(tmp_path / "nothing"))


def test_no_jdk_folder_falls_back_to_path(jvm_root, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    assert select_jdk("", environ={"PATH": str(bin_dir)}) == Jdk("java", "javac", "")


def test_a_jre_without_javac_and_a_home_without_release(jvm_root):
    jre = jdk_at(fake_jdk(jvm_root, "jre", "21.0.1", javac=False))
    assert jre is not None and jre.javac == "javac"
    unknown = fake_jdk(jvm_root, "mystery", None)
    assert jdk_at(unknown).version == "" and newest_jdk([unknown]) is None


@pytest.mark.parametrize(
    "version, feature", [("25.0.3", 25), ("17.0.15", 17), ("1.8.0_392", 8), ("", 0), ("26-ea", 26)]
)
def test_feature_release(version, feature):
    assert Jdk("java", "javac", version).feature == feature


@pytest.mark.skipif(not (REAL_17.is_dir() and REAL_25.is_dir()), reason="needs JDK 17 and 25")
def test_the_real_jdks_here():
    assert jdk_at(REAL_17).feature == 17 and jdk_at(REAL_25).feature == 25
    assert newest_jdk([REAL_17, REAL_25]).java == str(REAL_25 / "bin" / "java")
