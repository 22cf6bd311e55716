"""The layout's rules (docs/architecture.md), checked on the source so a change that breaks them fails here:

- infrastructure in ``supportflow/`` imports no app and no top-level wiring;
- the AI wing is entered through its door, ``tickets.ai.tasks``: only the wing itself, tests, the tickets
  app config, management commands and the demo import anything else of it, and the tickets core none of it;
- the only import-time cycles are the services ↔ tasks circles.

Imports are read with ``ast`` (module level and inside functions), not executed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("supportflow", "tickets", "knowledge", "analytics")
APPS = ("tickets", "knowledge", "analytics")
WIRING = ("supportflow.urls", "supportflow.routing", "supportflow.health", "supportflow.metrics",
          "supportflow.api", "supportflow.integrations", "supportflow.demo", "supportflow.admin",
          "supportflow.apps", "supportflow.management", "supportflow.bench_views", "supportflow.consumers")  # fmt: skip
INFRASTRUCTURE = ("supportflow.settings", "supportflow.test_settings", "supportflow.celery", "supportflow.asgi",
                  "supportflow.wsgi", "supportflow.logs", "supportflow.ratelimit", "supportflow.resilience",
                  "supportflow.layers", "supportflow.cache", "supportflow.markdown", "supportflow.llm",
                  "supportflow.errors", "supportflow.outbound", "supportflow.archives", "supportflow.middleware",
                  "supportflow.beat", "supportflow.devservices", "supportflow.context_processors",
                  "supportflow.evaluation", "supportflow.readiness", "supportflow.i18n",
                  "supportflow.spreadsheet", "supportflow.aio", "supportflow.redis_roles",
                  "supportflow.storage", "supportflow.generations", "supportflow.rows",
                  "supportflow.compiled")  # fmt: skip
AI_DOOR = "tickets.ai.tasks"
WORKBENCH = ("supportflow.demo",)  # the commands' libraries: seed_demo's simulated history mimics AI replies
ALLOWED_CYCLES = (  # each import-time cycle must lie within one of these groups
    ("tickets.services", "tickets.tasks"),
    ("knowledge.services", "knowledge.tasks"),
    ("tickets.ai.runs", "tickets.ai.tasks"),
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    }


MODULES = _sources()


def _resolve(name: str) -> str | None:
    """The project module an imported name lives in (``tickets.services.ticket_create`` → ``tickets.services``)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, *, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(MODULES[module].read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # also imports under a module-level ``if`` / ``try`` (not inside functions)
        nodes = [
            n for stmt in tree.body for n in ast.walk(stmt) if not isinstance(stmt, ast.FunctionDef | ast.ClassDef)
        ]
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            # ``from pkg import submodule`` needs the submodule; ``from pkg import name`` needs the package
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name)
            if target and target != module:
                found.add(target)
    return found


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _is_test(module: str) -> bool:
    return ".tests" in f".{module}" or module.endswith("conftest")


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _within(m, INFRASTRUCTURE)))
def test_infrastructure_imports_no_app_and_no_wiring(module):
    """The ASGI/WSGI entry points compose the wiring (routes); they still import no app themselves."""
    entry_point = module in ("supportflow.asgi", "supportflow.wsgi")
    bad = sorted(m for m in _imports(module) if _within(m, APPS) or (_within(m, WIRING) and not entry_point))
    assert bad == [], f"{module} is infrastructure but imports {bad}"


def test_every_supportflow_module_is_classified():
    """A new module in supportflow/ must be placed: infrastructure (imports no app) or wiring."""
    unplaced = sorted(
        m
        for m in MODULES
        if m.startswith("supportflow.")
        and not _is_test(m)
        and not _within(m, INFRASTRUCTURE + WIRING + ("supportflow.models", "supportflow.migrations"))
    )
    assert unplaced == []


def test_the_ai_wing_is_entered_through_its_door_only():
    allowed_anywhere = {AI_DOOR}
    offenders = {}
    for module in MODULES:
        if _within(module, ("tickets.ai", *WORKBENCH)) or _is_test(module) or ".management.commands." in module:
            continue
        if module == "tickets.apps":
            continue
        wing = {m for m in _imports(module) if _within(m, ("tickets.ai",)) and m != "tickets.ai"}
        bad = wing - allowed_anywhere if not _within(module, ("tickets",)) else wing
        if bad:
            offenders[module] = sorted(bad)
    assert offenders == {}, "import the AI wing through tickets.ai.tasks (the core: by task name, not at all)"


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def import_time_cycles() -> list[set[str]]:
    graph = {m: _imports(m, top_level_only=True) for m in MODULES if not _is_test(m)}
    return _strongly_connected(graph)


def test_only_the_services_tasks_circles_are_import_cycles():
    unexpected = [
        sorted(group)
        for group in import_time_cycles()
        if not any(all(_within(m, allowed) for m in group) for allowed in ALLOWED_CYCLES)
    ]
    assert unexpected == []
