"""yamllint on every YAML file the deployment ships, and a syntax check of the install script."""

from __future__ import annotations

from .deploytools import OBS, ROOT, assert_ok, run, tool

CONFIG = ROOT / "tests" / "deploy" / "yamllint.yaml"


def test_yamllint() -> None:
    files = [
        ROOT / "docker-compose.yml",
        ROOT / ".hadolint.yaml",
        CONFIG,
        *sorted(OBS.rglob("*.yml")),
        *sorted(OBS.rglob("*.yaml")),
    ]
    assert len(files) >= 7
    proc = run([tool("yamllint"), "--strict", "-c", str(CONFIG), *map(str, files)])
    assert_ok(proc)


def test_install_script_is_valid_bash() -> None:
    assert_ok(run(["bash", "-n", str(ROOT / "scripts" / "install-deploy-tools.sh")]))
