"""The YAML loader: values, positions, YAML 1.2 scalars, and its guards."""

from __future__ import annotations

from pathlib import Path

from mlops_gitops.diagnostics import Diagnostics
from mlops_gitops.spec.yamlload import parse_text


def parse(text: str) -> tuple[object, Diagnostics]:
    diags = Diagnostics()
    doc = parse_text(text, "f.yml", Path("f.yml"), diags)
    return doc, diags


def test_positions_of_keys_and_items() -> None:
    doc, diags = parse("a: 1\nb:\n  - x\n  - {y: 2}\n")
    assert diags.items == [] and doc is not None
    assert doc.data == {"a": 1, "b": ["x", {"y": 2}]}
    assert doc.pos(("a",)) == (1, 1)
    assert doc.pos(("b", 1, "y")) == (4, 6)
    assert doc.pos(("b", 1, "missing")) == (4, 5), "falls back to the deepest known prefix: the item"


def test_yaml_1_2_core_scalars() -> None:
    doc, _ = parse("a: yes\nb: on\nc: true\nd: 0x1F\ne: 1.5\nf: ~\ng: '3'\nh: 2024-01-02\ni: .inf\nj: 1_000\n")
    assert doc is not None
    assert doc.data == {"a": "yes", "b": "on", "c": True, "d": 31, "e": 1.5, "f": None, "g": "3",
                        "h": "2024-01-02", "i": float("inf"), "j": 1000}


def test_merge_keys() -> None:
    doc, _ = parse("base: &b {k: 1, z: 0}\nc:\n  <<: *b\n  z: 3\n")
    assert doc is not None and doc.data["c"] == {"k": 1, "z": 3}


def test_duplicate_keys_are_an_error() -> None:
    doc, diags = parse("a: 1\nb: 2\na: 3\n")
    assert doc is None
    assert [(d.code, d.line, d.column) for d in diags.items] == [("YAML001", 3, 1)]
    assert "duplicate key 'a'" in diags.items[0].message


def test_recursive_alias_is_an_error() -> None:
    doc, diags = parse("a: &a [*a]\n")
    assert doc is None and "recursive alias" in diags.items[0].message


def test_alias_bomb_is_stopped() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 7)]
    doc, diags = parse("\n".join(lines) + "\n")
    assert doc is None and "too large" in diags.items[0].message


def test_deep_nesting_is_stopped() -> None:
    doc, diags = parse("a: " + "[" * 150 + "]" * 150 + "\n")
    assert doc is None and "nesting deeper" in diags.items[0].message


def test_several_documents_are_refused() -> None:
    doc, diags = parse("a: 1\n---\nb: 2\n")
    assert doc is None and diags.items[0].code == "YAML002" and diags.items[0].line == 3


def test_empty_document() -> None:
    doc, diags = parse("")
    assert doc is not None and doc.data is None and diags.items == []


def test_non_string_keys_become_text() -> None:
    doc, _ = parse("1: a\ntrue: b\n")
    assert doc is not None and doc.data == {"1": "a", "True": "b"}
