"""The layers stay one-way: storage knows nothing of HTTP, runners nothing of Redis, and only
the app factory imports the HTTP layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "botsys"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Absolute names of everything a module imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
                found.add(prefix)
                found.update(f"{prefix}.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
    return found


MODULES = {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}

RULES = [
    # (modules matching this prefix, must not import anything starting with these)
    ("botsys.store", ("aiohttp", "botsys.api", "botsys.runners", "botsys.webhooks")),
    (
        "botsys.runners",
        ("redis", "fakeredis", "aiohttp", "botsys.store", "botsys.queue", "botsys.api"),
    ),
    ("botsys.webhooks", ("redis", "fakeredis", "botsys.store", "botsys.queue", "botsys.api")),
    ("botsys.queue", ("aiohttp", "botsys.api")),
    ("botsys.jobs", ("aiohttp", "redis", "botsys.api")),
    ("botsys.orchestrator", ("aiohttp", "botsys.api")),
    ("botsys.config", ("aiohttp", "redis", "botsys.")),
]


@pytest.mark.parametrize("layer, forbidden", RULES)
def test_layer_does_not_import(layer, forbidden):
    offenders = [
        f"{mod} imports {imp}"
        for mod, imps in MODULES.items()
        if mod == layer or mod.startswith(layer + ".")
        for imp in imps
        if any(
            imp == f or imp.startswith(f if f.endswith(".") else f + ".") or imp == f.rstrip(".")
            for f in forbidden
        )
        and not (layer == "botsys.config" and imp == "botsys.config")
    ]
    assert offenders == []


HTTP_LAYER = ("botsys.api", "botsys.dashboard")


def test_only_the_app_factory_imports_the_http_layer():
    def in_http(name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in HTTP_LAYER)

    offenders = [
        mod
        for mod, imps in MODULES.items()
        if not in_http(mod) and mod != "botsys.app" and any(in_http(i) for i in imps)
    ]
    assert offenders == []


def test_the_walk_sees_the_package():
    assert {"botsys.app", "botsys.queue", "botsys.store.keys", "botsys.runners.types"} <= set(
        MODULES
    )
