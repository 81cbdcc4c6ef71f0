"""`mlops-gitops plan`: desired vs actual, ordered; text, Markdown or JSON; optionally saved."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mlops_gitops.backends.local import LocalBackend
from mlops_gitops.commands.common import (
    EXIT_CHANGES,
    EXIT_OK,
    Project,
    err,
    open_project,
    out,
    use_color,
    workspace_backend,
)
from mlops_gitops.diagnostics import Diagnostics
from mlops_gitops.errors import SpecError
from mlops_gitops.lineage.git import GitInfo, repo_info
from mlops_gitops.plan.make import make_plan
from mlops_gitops.plan.model import Plan
from mlops_gitops.plan.planfile import save_plan
from mlops_gitops.plan.render.jsonout import plan_to_dict
from mlops_gitops.plan.render.text import render_plan
from mlops_gitops.spec.tree import Tree, load_tree
from mlops_gitops.state import Snapshot
from mlops_gitops.validate.report import as_text


@dataclass
class Planned:
    project: Project
    tree: Tree
    workspace: str
    backend: LocalBackend
    snapshot: Snapshot
    git: GitInfo
    plan: Plan
    diagnostics: Diagnostics


def compute(project: Project, backend: LocalBackend, workspace: str, snapshot: Snapshot, prune: bool | None,
            strict: bool) -> Planned:
    """Load, validate and diff; raise SpecError (with diagnostics) when the tree has errors."""
    tree = load_tree(project.root, strict)
    git = repo_info(project.root)
    effective_prune = project.config.prune if prune is None else prune
    preview = backend.pipeline_preview if backend.runtime != "none" else None  # none: jobs are only recorded
    plan, diags = make_plan(tree, snapshot, workspace, effective_prune, git, strict or project.config.strict,
                            preview)
    if plan is None:
        raise SpecError("the repository has errors; nothing was planned", diags.sorted())
    warnings = [d for d in diags.sorted() if d.severity.value == "warning"]
    if warnings:
        err(as_text(warnings, len(tree.documents)).rsplit("\n", 1)[0])
    return Planned(project, tree, workspace, backend, snapshot, git, plan, diags)


def show(plan: Plan, fmt: str, color: bool | None, show_noop: bool) -> None:
    if fmt == "json":
        out(json.dumps(plan_to_dict(plan, show_noop), indent=2))
    elif fmt == "markdown":
        from mlops_gitops.plan.render.markdown import render_markdown  # jinja2 only when asked for

        out(render_markdown(plan, show_noop))
    else:
        out(render_plan(plan, use_color(color), show_noop))


def plan_read_only(path: str, workspace: str | None, prune: bool | None, strict: bool) -> Planned:
    """Plan without taking the lock or writing anything."""
    project = open_project(path)
    with workspace_backend(project, workspace) as (name, backend):
        return compute(project, backend, name, backend.read(), prune, strict)


def plan(path: str = ".", workspace: str | None = None, prune: bool | None = None, out_file: str | None = None,
         fmt: str = "text", detailed_exitcode: bool = False, show_noop: bool = False, strict: bool = False,
         color: bool | None = None) -> int:
    project = open_project(path)
    with workspace_backend(project, workspace) as (name, backend):
        if out_file:  # a saved plan is signed with the workspace's secret: a new workspace gets its identity now
            backend.ensure()
        planned = compute(project, backend, name, backend.read(), prune, strict)
    show(planned.plan, fmt, color, show_noop)
    if out_file:
        key = planned.snapshot.plan_key()
        assert key is not None  # ensure() gave the workspace its secret
        save_plan(planned.plan, Path(out_file), key)
        if fmt == "text":
            out(f"\nSaved the plan to {out_file}. Apply exactly this plan with: mlops-gitops apply {out_file}")
    if detailed_exitcode and planned.plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK
