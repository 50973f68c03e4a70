"""Print the import graph and the migration graph between ARM's apps as edge lists, with any cycles.

    .venv/bin/python scripts/app_graphs.py [CHECKOUT]    # CHECKOUT: another working tree (default: this one)

Imports are read from the source (``ast``: every ``import``, module-level or inside a function, in
production code; tests and migrations left out), so a lazy import counts as much as a top-level one.
Migrations come from Django's ``MigrationLoader`` (``dependencies`` and ``run_before``), by app label.
Used for issue 23's before/after note; stdlib and Django only."""

from __future__ import annotations

import ast
import os
import sys
from collections import Counter
from pathlib import Path

BASE = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
SKIP_DIRS = {"tests", "sdk", "scripts", "docs", "fixtures", "node_modules", "static_src", "migrations"}


def packages() -> list[str]:
    return sorted(
        p.name
        for p in BASE.iterdir()
        if p.is_dir() and (p / "__init__.py").exists() and p.name not in SKIP_DIRS and not p.name.startswith(".")
    )


def imported_modules(path: Path, module: str):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                parts = module.split(".")[: -node.level]
                yield ".".join([*parts, node.module] if node.module else parts)
            elif node.module:
                yield node.module


def import_edges(names: list[str]) -> Counter:
    edges: Counter = Counter()
    for name in names:
        for path in (BASE / name).rglob("*.py"):
            relative = path.relative_to(BASE)
            if SKIP_DIRS & set(relative.parts[1:-1]):
                continue
            module = ".".join(relative.with_suffix("").parts)
            for target in imported_modules(path, module):
                top = target.split(".")[0]
                if top in names and top != name:
                    edges[(name, top)] += 1
    return edges


def migration_edges() -> tuple[Counter, dict[str, str]]:
    sys.path.insert(0, str(BASE))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.apps import apps
    from django.db.migrations.loader import MigrationLoader

    ours = {c.label: c.name for c in apps.get_app_configs() if Path(c.path).resolve().parent == BASE}
    loader = MigrationLoader(None, ignore_no_migrations=True)
    edges: Counter = Counter()
    for (app, _name), migration in loader.disk_migrations.items():
        if app not in ours:
            continue
        for dep_app, _dep in migration.dependencies:
            if dep_app in ours and dep_app != app:
                edges[(app, dep_app)] += 1
        for before_app, _before in getattr(migration, "run_before", []):
            if before_app in ours and before_app != app:
                edges[(before_app, app)] += 1
    return edges, ours


def cycles(edges) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def show(title: str, edges: Counter, unit: str) -> None:
    print(f"## {title}")
    for (a, b), n in sorted(edges.items()):
        print(f"{a} -> {b}  ({n} {unit})")
    found = cycles(edges)
    print("cycles: " + ("; ".join(" <-> ".join(c) for c in found) if found else "none"))
    print()


def main() -> None:
    names = packages()
    show("Imports between packages (importer -> imported)", import_edges(names), "imports")
    edges, ours = migration_edges()
    renamed = {label: name for label, name in ours.items() if label != name}
    title = "Migrations between apps (app -> app its migrations wait for), by app label"
    if renamed:
        title += " (" + ", ".join(f"label {label} = package {name}" for label, name in sorted(renamed.items())) + ")"
    show(title, edges, "dependencies")


if __name__ == "__main__":
    main()
