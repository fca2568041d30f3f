"""The import graph of plugins/: no circle anywhere, and no import that runs up a layer.

The layers are the ones plugins/module_utils/_datapath/__init__.py draws, with the
controller side on top: the engine (errors and reasons, kernel, types, program, record,
hooks, facts, indexes and denyhits, mapsync and info, checkpoint, host), then module_utils/_base,
then plugin_utils, then the plugins Ansible loads (modules, action, filter, lookup, test).
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "plugins")
PREFIX = "ansible_collections.wirespeed.datapath.plugins."
ENGINE = "module_utils._datapath."
# (module name prefix, layer): the longest matching prefix decides; an import may go to the same layer or below
LAYERS = [
    (ENGINE + "errors", 0), (ENGINE + "reasons", 0),
    (ENGINE + "kernel", 1), (ENGINE + "types", 2), (ENGINE + "program", 3), (ENGINE + "record", 4),
    (ENGINE + "hooks", 5), (ENGINE + "facts", 6), (ENGINE + "indexes", 6), (ENGINE + "denyhits", 6),
    (ENGINE + "mapsync", 7), (ENGINE + "info", 7), (ENGINE + "carry", 7), (ENGINE + "keycache", 7),
    (ENGINE + "keybuf", 7),
    (ENGINE + "checkpoint", 8), (ENGINE + "apply", 8), (ENGINE + "host", 9),
    ("module_utils._datapath", 0),  # the package's own __init__
    ("module_utils._base", 10), ("module_utils", 10), ("doc_fragments", 10),
    ("plugin_utils", 11),
    ("modules", 12), ("action", 12), ("filter", 12), ("lookup", 12), ("test", 12),
]


def modules() -> dict[str, str]:
    """{dotted name under plugins/: file path} of every Python file."""
    out = {}
    for here, _dirs, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(here, name)
                rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                out[rel[:-9] if rel.endswith(".__init__") else rel] = path
    return out


def imports(name: str, path: str, known: set[str]) -> set[str]:
    """The plugins/ modules that module `name` imports (absolute collection imports and relative ones)."""
    with open(path) as fh:
        tree = ast.parse(fh.read())
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package
                for _up in range(node.level - 1):
                    base = base.rpartition(".")[0]
                base = "%s.%s" % (base, node.module) if node.module else base
            else:
                base = node.module or ""
            targets = [base] + ["%s.%s" % (base, a.name) for a in node.names]
        for target in targets:
            short = target[len(PREFIX):] if target.startswith(PREFIX) else target
            if short in known and short != name:
                found.add(short)
    return found


def layer(name: str) -> int:
    best = max((p for p, _rank in LAYERS if name == p or name.startswith(p + ".")), key=len, default=None)
    assert best is not None, "%s is in no layer: add it to LAYERS and to the map in _datapath/__init__.py" % name
    return dict(LAYERS)[best]


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_graph_is_read():
    edges = graph()
    assert ENGINE + "host.cli" in edges
    assert ENGINE + "host.restore" in edges[ENGINE + "host.cli"]
    assert ENGINE + "kernel.links" in edges[ENGINE + "kernel.xdp_netlink"]


def test_no_circle():
    assert circles(graph()) == []


def test_no_import_runs_up_a_layer():
    up = sorted("%s -> %s" % (a, b) for a, targets in graph().items() for b in targets if layer(b) > layer(a))
    assert up == []


@pytest.mark.parametrize("edges, expected", [
    ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_circles_finds_a_circle(edges, expected):
    assert circles(edges) == expected


def test_a_circle_in_the_tree_would_be_seen(monkeypatch):
    edges = graph()
    edges[ENGINE + "kernel.libbpf"] = edges[ENGINE + "kernel.libbpf"] | {ENGINE + "host.cli"}
    assert circles(edges) and layer(ENGINE + "host.cli") > layer(ENGINE + "kernel.libbpf")


def test_the_engine_reaches_an_index_only_through_the_indexes_package():
    """mapsync, checkpoint and info know no index by name (the firewall's prefilter is one kind among KINDS)."""
    kind = ENGINE + "indexes.prefilter"
    users = sorted(a for a, targets in graph().items() if kind in targets and not a.startswith(ENGINE + "indexes"))
    assert users == []
