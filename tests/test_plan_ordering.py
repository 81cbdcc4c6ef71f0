"""Plan ordering on snapshot fixtures (no backend): what must exist first is created first, consumers are
removed before what they use, and a snapshot that matches the tree plans nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.plan.build import build_plan
from mlops_gitops.plan.desired import build_desired
from mlops_gitops.plan.model import Action, Plan
from mlops_gitops.spec.tree import load_tree
from mlops_gitops.state import ActualResource, DesiredResource, Snapshot
from tests.helpers import every_kind_tree


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return every_kind_tree(tmp_path / "tree")


def actual(d: DesiredResource) -> ActualResource:
    """A desired resource as a workspace holds it after an apply."""
    return ActualResource(d.address, d.spec, d.derived, d.content_hash, d.spec_hash, d.spec, d.spec_hash, "active",
                          True, d.source_file, "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00",
                          files=tuple(d.artifacts))


def plan_of(root: Path, snapshot: Snapshot, prune: bool = False) -> Plan:
    plan, diags = build_plan("dev", build_desired(load_tree(root), snapshot), snapshot, prune, str(root), None, False)
    assert not diags.has_errors(), diags.sorted()
    return plan


def applied(root: Path) -> Snapshot:
    snap = Snapshot("ws-1", 7)
    for address, d in build_desired(load_tree(root), snap).resources.items():
        snap.resources[address] = actual(d)
    return snap


def position(plan: Plan) -> dict[Address, int]:
    return {c.address.unversioned: i for i, c in enumerate(plan.actionable)}


def test_an_empty_workspace_creates_dependencies_first(tree: Path) -> None:
    plan = plan_of(tree, Snapshot(None, 0))
    assert {c.action for c in plan.actionable} == {Action.CREATE}
    at = position(plan)
    for c in plan.actionable:
        for dep in c.depends_on:
            if dep.unversioned in at:
                assert at[dep.unversioned] < at[c.address.unversioned], f"{dep} before {c.address}"
    endpoint, deployment, traffic = (Address(Kind.ONLINE_ENDPOINT, "ep1"), Address(Kind.ONLINE_DEPLOYMENT, "ep1/dep"),
                                     Address(Kind.TRAFFIC, "ep1"))
    assert at[endpoint] < at[deployment] < at[traffic]
    assert at[Address(Kind.MODEL, "m")] < at[Address(Kind.BATCH_DEPLOYMENT, "be1/old")]


def test_a_matching_snapshot_plans_nothing(tree: Path) -> None:
    assert plan_of(tree, applied(tree)).actionable == []


def test_pruning_removes_consumers_before_what_they_use(tree: Path) -> None:
    snapshot = applied(tree)
    for f in tree.glob("*.yml"):
        f.unlink()
    assert plan_of(tree, snapshot).actionable == [], "without prune nothing is removed"
    plan = plan_of(tree, snapshot, prune=True)
    at = position(plan)
    assert set(at) == {a.unversioned for a in snapshot.resources}
    for c in plan.actionable:
        expected = Action.ARCHIVE if c.address.version is not None else Action.DELETE
        assert c.action is expected, c
    assert at[Address(Kind.TRAFFIC, "ep1")] < at[Address(Kind.ONLINE_DEPLOYMENT, "ep1/dep")] \
        < at[Address(Kind.ONLINE_ENDPOINT, "ep1")]
    assert at[Address(Kind.BATCH_DEPLOYMENT, "be1/old")] < at[Address(Kind.MODEL, "m")]
    assert at[Address(Kind.BATCH_DEPLOYMENT, "be1/pbd")] < at[Address(Kind.COMPONENT, "pc")]
