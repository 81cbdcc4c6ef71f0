"""Imports point one way (DESIGN.md §3): lower layers never import higher ones."""

from __future__ import annotations

import ast
from pathlib import Path

import mlops_gitops

PKG = Path(mlops_gitops.__file__).parent

# Each package may import only from packages at its own level or below.
LAYERS = [
    {"errors", "diagnostics", "hashing", "graph", "addresses", "actor", "faults", "fsutil", "imageref", "redact",
     "resources", "jsonload", "textsafe"},
    {"spec", "runtime", "events"},  # events: the event model and sinks, emitted by backends and commands
    {"validate"},
    {"state", "lineage"},
    {"backends"},
    {"plan"},
    {"apply", "monitor"},
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
