"""The kind registry: every kind declares every trait, and the traits agree with the rest of the code."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from mlops_gitops import kinds
from mlops_gitops.kinds import TRAITS, Kind, NameRule, traits
from mlops_gitops.spec.catalog import CATALOG
from mlops_gitops.spec.tree import load_tree

FIELDS = typing.get_type_hints(kinds.Traits)


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_has_every_trait(kind: Kind) -> None:
    entry = TRAITS[kind]
    assert entry.kind is kind
    for f in dataclasses.fields(entry):
        value = getattr(entry, f.name)
        assert value is not None, f"{kind}: {f.name}"
        origin = typing.get_origin(FIELDS[f.name]) or FIELDS[f.name]
        assert isinstance(value, origin), f"{kind}: {f.name} is {type(value).__name__}"


def test_ranks_follow_the_design_order() -> None:
    # DESIGN.md §5: data/environment → component → pipeline; model → deployment → traffic. (A model made
    # by a job also depends on that job explicitly, so the model's rank does not need to follow the job's.)
    ranks = [traits(k).rank for k in Kind]
    assert len(set(ranks)) == len(ranks)
    r = {k: traits(k).rank for k in Kind}
    assert max(r[Kind.DATA], r[Kind.ENVIRONMENT]) < r[Kind.COMPONENT] < r[Kind.JOB]
    assert r[Kind.MODEL] < r[Kind.ONLINE_DEPLOYMENT] < r[Kind.TRAFFIC]
    assert r[Kind.BATCH_ENDPOINT] < r[Kind.BATCH_DEPLOYMENT]


@pytest.mark.parametrize("rule", sorted({t.name for t in TRAITS.values()} | {kinds.STEP_NAME, kinds.PORT_NAME,
                                                                            kinds.VERSION}, key=repr),
                         ids=lambda r: r.description[:30])
def test_no_name_rule_admits_a_path(rule: NameRule) -> None:
    for bad in ("a/b", "..", "a\\b", "", "x" * 300):
        assert not rule.accepts(bad)


def test_versioned_kinds_are_the_assets() -> None:
    assert {Kind.DATA, Kind.ENVIRONMENT, Kind.COMPONENT, Kind.MODEL} == kinds.VERSIONED
    assert all(not traits(k).replace_fields for k in kinds.VERSIONED)  # a new version, never a replacement


def test_replace_fields_are_fields_of_the_kind() -> None:
    for kind, entry in TRAITS.items():
        models = [info.model for info in CATALOG.values() if info.kind is kind]
        known = {"schema"} | {name for m in models for name in m.model_fields}
        assert entry.replace_fields <= known, f"{kind}: {entry.replace_fields - known}"


def test_links_of_the_example_repository_are_declared(example: Path) -> None:
    tree = load_tree(example)
    assert not tree.diagnostics.has_errors()
    seen = 0
    for res in tree.resources:
        for link in res.links:
            if link.target is not None:
                seen += 1
                assert link.target in traits(res.kind).links, f"{res.file}: {res.kind} -> {link.target}"
    assert seen >= 3
