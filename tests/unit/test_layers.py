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
    # the store knows nothing of HTTP or of who runs jobs; the outbox implements the
    # dispatcher's contract (webhooks/types.py), the one piece of webhooks it sees
    (
        "botsys.store",
        ("aiohttp", "botsys.api", "botsys.runners", "botsys.queue", "botsys.orchestrator"),
    ),
    (
        "botsys.runners",
        ("redis", "fakeredis", "aiohttp", "botsys.store", "botsys.queue", "botsys.api"),
    ),
    ("botsys.webhooks", ("redis", "fakeredis", "botsys.store", "botsys.queue", "botsys.api")),
    # the queue knows nothing of who runs jobs: callers hand its leases on (intake.py)
    ("botsys.queue", ("aiohttp", "botsys.api", "botsys.orchestrator", "botsys.intake")),
    ("botsys.jobs", ("aiohttp", "redis", "botsys.api")),
    ("botsys.orchestrator", ("aiohttp", "botsys.api")),
    ("botsys.control", ("aiohttp", "botsys.api", "botsys.orchestrator")),
    ("botsys.config", ("aiohttp", "redis", "botsys.")),
    ("botsys.states", ("aiohttp", "redis", "botsys.")),  # the vocabulary every layer shares
    ("botsys.backoff", ("aiohttp", "redis", "botsys.")),  # pure: job and webhook retries
    # the dashboard is a page over the API: it shares the app's keys, never the API's modules
    ("botsys.dashboard", ("botsys.api",)),
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


def test_of_webhooks_the_store_sees_only_the_dispatchers_contract():
    seen = {
        f"{mod} imports {imp}"
        for mod, imps in MODULES.items()
        if mod.startswith("botsys.store")
        for imp in imps
        if imp.startswith("botsys.webhooks") and not imp.startswith("botsys.webhooks.types")
    }
    assert seen == set()


HTTP_LAYER = ("botsys.api", "botsys.dashboard", "botsys.appkeys")


def test_only_the_app_factory_imports_the_http_layer():
    def in_http(name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in HTTP_LAYER)

    offenders = [
        mod
        for mod, imps in MODULES.items()
        if not in_http(mod) and mod != "botsys.app" and any(in_http(i) for i in imps)
    ]
    assert offenders == []


def unit_of(name: str) -> str:
    """The top-level piece a module belongs to: ``botsys.api.routes`` → ``botsys.api``."""
    return ".".join(name.split(".")[:2])


def unit_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for mod, imps in MODULES.items():
        targets = {unit_of(i) for i in imps if i.startswith("botsys.")}
        graph.setdefault(unit_of(mod), set()).update(targets - {unit_of(mod)})
    return graph


def cycle_in(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` as a path (first node repeated at the end), or []."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return path[path.index(node) :] + [node]
        if node in done:
            return []
        for nxt in sorted(graph.get(node, ())):
            found = visit(nxt, [*path, node])
            if found:
                return found
        done.add(node)
        return []

    for start in sorted(graph):
        found = visit(start, [])
        if found:
            return found
    return []


def test_no_import_cycle_between_the_packages_pieces():
    """Modules and subpackages of botsys import each other one way only: each can be read (and
    tested) knowing only what it imports."""
    assert cycle_in(unit_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycle_in(graph) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b"}, "b": set()}) == []


def test_the_walk_sees_the_package():
    assert {"botsys.app", "botsys.queue", "botsys.store.keys", "botsys.runners.types"} <= set(
        MODULES
    )


STORE_INTERNALS = ("keys", "scripts", "redis")


@pytest.mark.parametrize("module", ["botsys.orchestrator", "botsys.intake"])
def test_the_engine_never_reaches_into_store_internals(module):
    """The orchestrator goes through JobQueue's methods: no key names, scripts or client."""
    path = PACKAGE.parent / (module.replace(".", "/") + ".py")
    tree = ast.parse(path.read_text())
    reached = sorted(
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in STORE_INTERNALS
    )
    imported = sorted(
        i
        for i in MODULES[module]
        if i.startswith(("botsys.store.keys", "botsys.store.scripts", "botsys.store.connection"))
    )
    assert (reached, imported) == ([], [])


def reaches_into_a_queue(node: ast.AST) -> bool:
    """``queue.redis``, ``self.queue.keys``, ``app[QUEUE].scripts``, ``q.redis``…"""
    if not (isinstance(node, ast.Attribute) and node.attr in STORE_INTERNALS):
        return False
    owner = ast.unparse(node.value).lower()
    return owner.endswith(("queue", "queue]")) or owner in ("q", "self.q")


def test_outside_the_store_only_the_queue_builds_key_names():
    """api/, the app and the outbox go through the Store (app[STORE]); nobody through the
    queue's own client, keys or scripts."""
    offenders = [
        f"{module_name(path)}: {ast.unparse(node)}"
        for path in PACKAGE.rglob("*.py")
        if module_name(path) != "botsys.queue"
        for node in ast.walk(ast.parse(path.read_text()))
        if reaches_into_a_queue(node)
    ]
    assert offenders == []


def test_the_queue_reach_check_sees_every_spelling():
    spellings = ("queue.redis", "self.queue.keys", "app[QUEUE].scripts", "request.app[QUEUE].redis")
    assert all(reaches_into_a_queue(ast.parse(s).body[0].value) for s in spellings)
    assert not reaches_into_a_queue(ast.parse("store.redis").body[0].value)


CLIENT_LIBRARIES = ("redis", "fakeredis")


def test_only_the_store_and_the_queue_import_the_redis_client():
    """Everything else takes the Store (or a component built on it) and stays testable
    without Redis; the store re-exports what callers catch (store/errors.py)."""
    offenders = [
        f"{mod} imports {imp}"
        for mod, imps in MODULES.items()
        if not (mod == "botsys.queue" or mod.startswith("botsys.store."))
        for imp in imps
        if imp.split(".")[0] in CLIENT_LIBRARIES
    ]
    assert offenders == []
