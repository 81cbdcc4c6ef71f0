"""Plan a project against a workspace: load, validate and diff, through the Backend protocol only."""

from __future__ import annotations

from dataclasses import dataclass

from mlops_gitops.backends.base import Backend
from mlops_gitops.backends.factory import workspace_backend
from mlops_gitops.diagnostics import Diagnostic, Diagnostics, Severity
from mlops_gitops.errors import SpecError
from mlops_gitops.plan.make import make_plan
from mlops_gitops.plan.model import Plan
from mlops_gitops.spec.project import Project
from mlops_gitops.spec.tree import Tree, load_tree
from mlops_gitops.state import Snapshot
from mlops_gitops.vcs.git import GitInfo, repo_info


@dataclass
class Planned:
    project: Project
    tree: Tree
    workspace: str
    backend: Backend
    snapshot: Snapshot
    git: GitInfo
    plan: Plan
    diagnostics: Diagnostics

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics.sorted() if d.severity is Severity.WARNING]


def compute(project: Project, backend: Backend, workspace: str, snapshot: Snapshot, prune: bool | None,
            strict: bool) -> Planned:
    """Load, validate and diff; raise SpecError (with diagnostics) when the tree has errors."""
    tree = load_tree(project.root, strict)
    git = repo_info(project.root)
    effective_prune = project.config.prune if prune is None else prune
    runs = backend.runs
    plan, diags = make_plan(tree, snapshot, workspace, effective_prune, git, strict or project.config.strict,
                            runs.preview if runs is not None else None)
    if plan is None:
        raise SpecError("the repository has errors; nothing was planned", diags.sorted())
    return Planned(project, tree, workspace, backend, snapshot, git, plan, diags)


def plan_read_only(project: Project, workspace: str | None, prune: bool | None = None,
                   strict: bool = False, for_saving: bool = False) -> Planned:
    """Plan without taking the lock. A plan to be saved is signed with the workspace's secret, so a workspace
    that was never written gets its identity first (`for_saving`); nothing else is written."""
    with workspace_backend(project, workspace) as (name, backend):
        if for_saving:
            backend.ensure()
        return compute(project, backend, name, backend.read(), prune, strict)
