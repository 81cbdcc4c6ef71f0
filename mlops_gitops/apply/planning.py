"""Plan a project against a workspace: load, validate and diff, through the Backend protocol only."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from mlops_gitops import progress
from mlops_gitops.addresses import Address
from mlops_gitops.backends.base import Backend, Runs, StepPreview
from mlops_gitops.backends.factory import read_snapshot, workspace_backend
from mlops_gitops.diagnostics import Diagnostic, Diagnostics, Severity
from mlops_gitops.errors import GitOpsError, SpecError
from mlops_gitops.plan.build import PipelinePreview
from mlops_gitops.plan.make import make_plan
from mlops_gitops.plan.model import Plan
from mlops_gitops.spec.project import Project, resolve_workspace
from mlops_gitops.spec.tree import Tree, load_tree
from mlops_gitops.state import DesiredResource, Snapshot
from mlops_gitops.vcs.git import GitInfo, repo_info


@dataclass
class Planned:
    project: Project
    tree: Tree
    workspace: str
    backend: Backend | None  # None: a read-only plan, made from the state without opening the backend
    snapshot: Snapshot
    git: GitInfo
    plan: Plan
    diagnostics: Diagnostics

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics.sorted() if d.severity is Severity.WARNING]


def compute(project: Project, backend: Backend | None, workspace: str, snapshot: Snapshot, prune: bool | None,
            strict: bool, preview: PipelinePreview | None = None, promote: bool | None = None,
            targets: list[Address] | None = None) -> Planned:
    """Load, validate and diff; raise SpecError (with diagnostics) when the tree has errors. `targets`: only
    the changes of these resources (any version where none is given) and of what they depend on."""
    with progress.task(f"reading {project.root.name or project.root} and planning against workspace '{workspace}'"):
        tree = load_tree(project.root, strict)
        git = repo_info(project.root)
        effective_prune = project.config.prune if prune is None else prune
        if preview is None and backend is not None and backend.runs is not None:
            preview = backend.runs.preview
        plan, diags = make_plan(tree, snapshot, workspace, effective_prune, git, strict or project.config.strict,
                                preview, _runtime(project, workspace),
                                _setting(project, workspace, "promote_latest", True) if promote is None else promote)
    if plan is None:
        raise SpecError("the repository has errors; nothing was planned", diags.sorted())
    if targets is not None:
        narrow(plan, targets)
    return Planned(project, tree, workspace, backend, snapshot, git, plan, diags)


def narrow(plan: Plan, targets: list[Address]) -> None:
    """Keep the changes of the targets and, transitively, of what they depend on."""
    by_address = {c.address: c for c in plan.changes}
    todo = [a for a in by_address if any(a.kind is t.kind and a.name == t.name and t.version in (None, a.version)
                                         for t in targets)]
    keep: set[Address] = set()
    while todo:
        address = todo.pop()
        if address not in keep:
            keep.add(address)
            todo.extend(d for d in by_address[address].depends_on if d in by_address)
    plan.changes = [c for c in plan.changes if c.address in keep]
    plan.releases = [r for r in plan.releases if Address.parse(r["deployment"]) in keep]


def _runtime(project: Project, workspace: str) -> str | None:
    runtime: str | None = _setting(project, workspace, "runtime", None)
    return runtime


def _setting(project: Project, workspace: str, name: str, default: Any) -> Any:
    try:
        settings = resolve_workspace(project, workspace)
        return getattr(settings, name) if hasattr(settings, name) else getattr(settings.config, name)
    except GitOpsError:  # not a configured workspace of this project: nothing to check against
        return default


def plan_read_only(project: Project, workspace: str | None, prune: bool | None = None,
                   strict: bool = False, for_saving: bool = False, promote: bool | None = None) -> Planned:
    """Plan without taking the lock. A plan to be saved is signed with the workspace's secret, so a workspace
    that was never written gets its identity first (`for_saving`); nothing else is written. The state is
    read the cheap way where the backend offers one (SQLite without SQLAlchemy); the backend itself is
    opened only when a pipeline's steps are previewed."""
    if for_saving:
        with workspace_backend(project, workspace) as (name, backend):
            backend.ensure()
            return compute(project, backend, name, backend.read(), prune, strict, promote=promote)
    name = resolve_workspace(project, workspace).name
    snapshot = read_snapshot(project, workspace)
    with ExitStack() as opened:
        return compute(project, None, name, snapshot, prune, strict, _LazyPreview(project, workspace, opened),
                       promote)


class _LazyPreview:
    """Pipeline step previews from a backend opened on the first one (most plans have no pipeline change)."""

    def __init__(self, project: Project, workspace: str | None, opened: ExitStack) -> None:
        self.project, self.workspace, self.opened = project, workspace, opened
        self.runs: Runs | None = None
        self.started = False

    def __call__(self, job: DesiredResource, pending: dict[Address, DesiredResource]) -> StepPreview | None:
        if not self.started:
            _, backend = self.opened.enter_context(workspace_backend(self.project, self.workspace))
            self.runs, self.started = backend.runs, True
        return self.runs.preview(job, pending) if self.runs is not None else None
