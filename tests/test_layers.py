"""Imports point one way (DESIGN.md §3): lower layers never import higher ones."""

from __future__ import annotations

import ast
from pathlib import Path

import mlops_gitops

PKG = Path(mlops_gitops.__file__).parent

# Each package may import only from packages at its own level or below.
LAYERS = [
    {"errors", "diagnostics", "hashing", "graph", "kinds", "addresses", "actor", "faults", "fsutil", "imageref",
     "redact", "resources", "jsonload", "textsafe", "expressions", "iotypes", "progress", "triggers"},
    {"spec", "runtime", "events"},  # events: the event model and sinks, emitted by backends and commands
    {"validate"},
    {"state", "versioning", "lineage", "vcs"},
    {"backends"},
    {"plan"},
    {"apply", "monitor"},
    {"controller"},  # what a long-lived host runs (serve --follow): converges this machine to the workspace
    {"integrations", "commands"},
    {"cli", "__main__", "__init__"},
]
LEVEL = {name: i for i, names in enumerate(LAYERS) for name in names}
# plan and validate read actual state as pure data, never a backend implementation.
FORBIDDEN = {"plan": {"backends"}, "validate": {"backends", "plan"}, "spec": {"backends", "plan", "validate"},
             "runtime": {"spec"}}  # the data plane knows only its own config, not the repository format


def top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "mlops_gitops" and len(parts) > 1 else None


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_imports_point_down() -> None:
    """Between packages: never upward, never into a forbidden neighbour."""
    problems = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG)
        owner = rel.parts[0].removesuffix(".py")
        assert owner in LEVEL, f"{rel}: add its package to LAYERS"
        for module in imports(path):
            target = top(module)
            if target is None or target == owner:
                continue
            if LEVEL[target] > LEVEL[owner] or target in FORBIDDEN.get(owner, set()):
                problems.append(f"{rel} imports {module}")
    assert problems == []


def _module_name(path: Path) -> str:
    parts = ("mlops_gitops", *path.relative_to(PKG).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_graph() -> dict[str, set[str]]:
    """Which of our modules each module imports (`from pkg import sub` counts as importing pkg.sub)."""
    paths = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in paths else node.module
                           for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            graph[name].update(t for t in targets if t in paths and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles_between_modules() -> None:
    """Inside a package too, imports form no circle (type-checking and function-level imports included)."""
    assert cycles(module_graph()) == []


def test_the_circle_check_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
