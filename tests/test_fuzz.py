"""Fuzz the loader: random YAML and random mutations of the example files never raise."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from mlops_gitops.diagnostics import Diagnostics
from mlops_gitops.plan.desired import build_desired
from mlops_gitops.spec.tree import load_tree
from mlops_gitops.spec.yamlload import parse_text
from mlops_gitops.state import Snapshot
from mlops_gitops.validate import validate_tree
from tests.helpers import EXAMPLE


def _n(default: int) -> int:
    return 3000 if os.environ.get("HYPOTHESIS_PROFILE") == "deep" else default


EXAMPLE_FILES = sorted(p.relative_to(EXAMPLE).as_posix() for p in EXAMPLE.rglob("*.yml")
                       if not p.name.startswith("conda"))

REFS = ["azureml:x:1", "azureml:y@latest", "../..", "${{parent.x}}"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=30), st.sampled_from(REFS))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=5)), max_leaves=20)


def dump(data: Any) -> str:
    buf = io.StringIO()
    y = YAML(typ="safe", pure=True)
    y.dump(data, buf)
    return buf.getvalue()


@contextlib.contextmanager
def example_with(files: dict[str, str]) -> Iterator[Path]:
    """A copy of the example repository with some files replaced."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".mlops"))
        for rel, text in files.items():
            (root / rel).write_text(text, encoding="utf-8", errors="surrogatepass")
        yield root


def check_tree(files: dict[str, str]) -> None:
    with example_with(files) as root:
        tree = load_tree(root)
        diags = validate_tree(tree)
        if not diags.has_errors():
            build_desired(tree, Snapshot(None, 0))


@settings(deadline=None, max_examples=_n(300))
@given(st.text(max_size=300))
def test_any_text_parses_or_reports(text: str) -> None:
    diags = Diagnostics()
    parse_text(text, "f.yml", Path("f.yml"), diags)
    assert all(d.line >= 0 and d.column >= 0 for d in diags.items)


@pytest.mark.slow
@settings(deadline=None, max_examples=_n(60), suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(EXAMPLE_FILES), st.dictionaries(st.text(max_size=15), values, max_size=6))
def test_random_documents_in_the_tree(rel: str, data: dict[str, Any]) -> None:
    schema = (EXAMPLE / rel).read_text().splitlines()[0]
    check_tree({rel: schema + "\n" + dump(data)})


@pytest.mark.slow
@settings(deadline=None, max_examples=_n(80), suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(EXAMPLE_FILES), st.data())
def test_mutated_example_files(rel: str, data: st.DataObject) -> None:
    text = (EXAMPLE / rel).read_text()
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(text)))
        op = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = data.draw(st.sampled_from([":", "-", " ", "\n", "{", "[", "'", "&a", "*a", "!!int", "x", "100", "\t"]))
        if op == "insert":
            text = text[:pos] + chunk + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + len(chunk):]
        else:
            text = text[:pos] + chunk + text[pos + 1:]
    check_tree({rel: text})


@pytest.mark.slow
@settings(deadline=None, max_examples=_n(60), suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(EXAMPLE_FILES), st.data())
def test_mutated_values(rel: str, data: st.DataObject) -> None:
    doc = YAML(typ="safe", pure=True).load((EXAMPLE / rel).read_text())
    keys = list(doc)
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from(keys))
        doc[key] = data.draw(values)
    check_tree({rel: dump(doc)})


@pytest.mark.parametrize("key", ["inputs", "outputs"])
def test_component_ports_that_are_not_a_mapping_are_reported(key: str) -> None:
    # Found by hypothesis: `inputs: true` in a component used by a pipeline crashed the compiler.
    rel = "components/prep.yml"
    doc = YAML(typ="safe", pure=True).load((EXAMPLE / rel).read_text())
    doc[key] = True
    with example_with({rel: dump(doc)}) as root:
        diags = validate_tree(load_tree(root))
    assert diags.has_errors()
    assert any(d.file.endswith("prep.yml") for d in diags.items if d.severity == "error")
