"""What rules can look things up in: the tree, and optionally the workspace's existing resources."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mlops_gitops.addresses import Kind
from mlops_gitops.diagnostics import Diagnostics, Severity
from mlops_gitops.kinds import VERSIONED
from mlops_gitops.spec.references import AssetRef
from mlops_gitops.spec.resource import SpecResource
from mlops_gitops.spec.tree import Tree


@dataclass
class RuleContext:
    tree: Tree
    # Existing resources in the workspace: (kind, name) -> versions (empty tuple for unversioned kinds).
    existing: Mapping[tuple[Kind, str], tuple[str, ...]] = field(default_factory=dict)
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    offline: bool = False  # no workspace consulted: what only a workspace could hold is not known to be missing

    def __post_init__(self) -> None:
        self.by_name: dict[tuple[Kind, str], list[SpecResource]] = {}
        # endpoint name -> names of its online deployments, in the tree or the workspace
        self.online_deployments: dict[str, set[str]] = {}
        for res in self.tree.resources:
            self.by_name.setdefault((res.kind, res.name), []).append(res)
            if res.kind is Kind.ONLINE_DEPLOYMENT:
                self._add_deployment(res.name)
        for kind, name in self.existing:
            if kind is Kind.ONLINE_DEPLOYMENT:
                self._add_deployment(name)

    def _add_deployment(self, name: str) -> None:
        endpoint, _, deployment = name.partition("/")
        self.online_deployments.setdefault(endpoint, set()).add(deployment)

    def report(self, res: SpecResource | str, loc: tuple[str | int, ...], code: str, message: str,
               severity: Severity = Severity.ERROR) -> None:
        if isinstance(res, str):
            self.diagnostics.add(res, 1, 1, code, message, severity)
            return
        line, col = res.pos(loc)
        self.diagnostics.add(res.file, line, col, code, message, severity)

    def in_tree(self, kind: Kind, name: str) -> list[SpecResource]:
        return self.by_name.get((kind, name), [])

    def resolves(self, kind: Kind, ref: AssetRef) -> bool:
        """Does `azureml:` ref name something in the tree or the workspace?"""
        tree = self.in_tree(kind, ref.name)
        existing = self.existing.get((kind, ref.name))
        if kind not in VERSIONED or (ref.version is None and ref.label is None):
            return bool(tree) or existing is not None
        if ref.label is not None:  # @latest: any version will do
            return bool(tree) or bool(existing)
        if any(r.version == ref.version for r in tree):
            return True
        if existing is not None and ref.version in existing:
            return True
        # An auto-versioned file in the tree will create a version on apply: the next number
        # is only known against a workspace, so without one we accept it.
        auto = any(r.version is None for r in tree)
        if auto and not self.existing:
            return True
        if auto:
            versions = [int(v) for v in (existing or ()) if v.isdigit()]
            return ref.version == str(max(versions, default=0) + 1)
        return False
