"""The lineage graph as plain data, and its renderings: text trees, JSON, Mermaid and Graphviz DOT.

Nodes are workspace resources (`model:churn:4`), runs (`run:<id>`), Git commits (`commit:<sha>`)
and DVC data hashes (`dvc:<md5>`); an edge points from what was used to what it produced or serves.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Node:
    id: str
    kind: str  # resource kind, run, commit, dvc
    label: str
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    root: str
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: set[tuple[str, str, str]] = field(default_factory=set)  # (from, to, relation)

    def add(self, node: Node) -> None:
        if node.id not in self.nodes:
            self.nodes[node.id] = node
        else:
            self.nodes[node.id].attrs.update(node.attrs)

    def link(self, source: str, target: str, relation: str) -> None:
        self.edges.add((source, target, relation))

    def inputs_of(self, node: str) -> list[tuple[str, str]]:
        return sorted((s, r) for s, t, r in self.edges if t == node)

    def outputs_of(self, node: str) -> list[tuple[str, str]]:
        return sorted((t, r) for s, t, r in self.edges if s == node)


def _describe(node: Node) -> str:
    extras = ", ".join(f"{k}: {v}" for k, v in node.attrs.items() if v not in (None, "", {}, []))
    return f"{node.label}" + (f"  ({extras})" if extras else "")


def as_text(graph: Graph) -> str:
    """Two trees from the root; a node already shown is named again but not expanded (marked ^)."""
    lines = [_describe(graph.nodes[graph.root])]

    def walk(node: str, direction: str, depth: int, shown: set[str]) -> None:
        step = graph.inputs_of(node) if direction == "up" else graph.outputs_of(node)
        for other, relation in step:
            arrow = "<-" if direction == "up" else "->"
            if other in shown:
                lines.append(f"{'  ' * depth}{arrow} {relation}: {graph.nodes[other].label} ^")
                continue
            shown.add(other)
            lines.append(f"{'  ' * depth}{arrow} {relation}: {_describe(graph.nodes[other])}")
            walk(other, direction, depth + 1, shown)

    for title, direction in (("upstream (what it came from)", "up"), ("downstream (what uses it)", "down")):
        lines.append(f"{title}:")
        before = len(lines)
        walk(graph.root, direction, 1, {graph.root})
        if len(lines) == before:
            lines.append("  (nothing)")
    return "\n".join(lines)


def as_json(graph: Graph) -> str:
    return json.dumps({"root": graph.root,
                       "nodes": [{"id": n.id, "kind": n.kind, "label": n.label, **n.attrs}
                                 for n in sorted(graph.nodes.values(), key=lambda n: n.id)],
                       "edges": [{"from": s, "to": t, "relation": r} for s, t, r in sorted(graph.edges)]},
                      indent=2, default=str)


def _safe(node_id: str) -> str:
    return "n_" + re.sub(r"[^A-Za-z0-9_]", "_", node_id)


def _quote(text: str) -> str:
    return text.replace('"', "'")


def as_mermaid(graph: Graph) -> str:
    lines = ["flowchart LR"]
    for node in sorted(graph.nodes.values(), key=lambda n: n.id):
        shape = ("[(", ")]") if node.kind == "dvc" else ("([", "])") if node.kind == "run" else ("[", "]")
        lines.append(f'  {_safe(node.id)}{shape[0]}"{_quote(node.label)}"{shape[1]}')
    for s, t, r in sorted(graph.edges):
        lines.append(f"  {_safe(s)} -->|{_quote(r)}| {_safe(t)}")
    lines.append(f"  style {_safe(graph.root)} stroke-width:3px")
    return "\n".join(lines)


def as_dot(graph: Graph) -> str:
    lines = ["digraph lineage {", "  rankdir=LR;", "  node [shape=box, fontname=Helvetica];"]
    shapes = {"run": "ellipse", "dvc": "cylinder", "commit": "note"}
    for node in sorted(graph.nodes.values(), key=lambda n: n.id):
        extra = ", penwidth=3" if node.id == graph.root else ""
        lines.append(f'  {_safe(node.id)} [label="{_quote(node.label)}", shape={shapes.get(node.kind, "box")}{extra}];')
    for s, t, r in sorted(graph.edges):
        lines.append(f'  {_safe(s)} -> {_safe(t)} [label="{_quote(r)}"];')
    lines.append("}")
    return "\n".join(lines)


RENDERERS = {"text": as_text, "json": as_json, "mermaid": as_mermaid, "dot": as_dot}
