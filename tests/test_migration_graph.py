"""Migrations depend one way too: every dependency of one app's migration on another app's points down the
layers of pyproject.toml's import contract (README "Architecture"), so the graph between apps has no cycle.

A foreign key from a lower app to a higher one would make the lower app's migration wait for the higher
app's: bindings between the two live in the higher app (``policies.PolicyAttachment``,
``registry.InstanceKey``; docs/decisions.md, "Foreign keys point down the layers")."""

import tomllib
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db.migrations.loader import MigrationLoader


def _layer_of() -> dict[str, int]:
    """``{app label: layer index}`` (0 is the top) for the project's apps in the import contract."""
    config = tomllib.loads((Path(settings.BASE_DIR) / "pyproject.toml").read_text())["tool"]["importlinter"]
    rank = {pkg.strip(): i for i, layer in enumerate(config["contracts"][0]["layers"]) for pkg in layer.split("|")}
    return {a.label: rank[a.name.split(".")[0]] for a in apps.get_app_configs() if a.name.split(".")[0] in rank}


def _app_edges() -> dict[tuple[str, str], list[str]]:
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    layer = _layer_of()
    edges: dict[tuple[str, str], list[str]] = {}
    for key in graph.nodes:
        for parent in graph.node_map[key].parents:
            if parent.key[0] != key[0] and key[0] in layer and parent.key[0] in layer:
                edges.setdefault((key[0], parent.key[0]), []).append(f"{key[1]} -> {parent.key[1]}")
    return edges


def test_every_cross_app_migration_dependency_points_down_the_layers():
    layer = _layer_of()
    assert {"registry", "policies", "arm"} <= set(layer)  # the check sees the apps it is about
    upward = {f"{a} -> {b}": why for (a, b), why in _app_edges().items() if layer[a] >= layer[b]}
    assert upward == {}


def test_the_migration_graph_between_apps_has_no_cycle():
    following: dict[str, set[str]] = {}
    for a, b in _app_edges():
        following.setdefault(a, set()).add(b)

    def reaches(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in following.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    assert sorted(app for app in following if app in reaches(app)) == []
