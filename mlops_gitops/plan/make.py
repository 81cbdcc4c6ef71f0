"""One call from a loaded tree and a snapshot to a plan, with every diagnostic on the way."""

from __future__ import annotations

from mlops_gitops.diagnostics import Diagnostics
from mlops_gitops.plan.build import PipelinePreview, build_plan
from mlops_gitops.plan.desired import build_desired
from mlops_gitops.plan.model import Plan
from mlops_gitops.spec.tree import Tree
from mlops_gitops.state import Snapshot
from mlops_gitops.validate import validate_tree
from mlops_gitops.vcs.git import GitInfo


def make_plan(tree: Tree, snapshot: Snapshot, workspace: str, prune: bool, git: GitInfo,
              strict: bool = False, preview: PipelinePreview | None = None) -> tuple[Plan | None, Diagnostics]:
    """Validate against the tree and the workspace, then diff; no plan when there are errors."""
    diags = validate_tree(tree, snapshot.index())
    if strict:
        diags.promote_warnings()
    if diags.has_errors():
        return None, diags
    desired = build_desired(tree, snapshot)
    dirty = any(f.startswith(_prefix(tree, git)) for f in git.dirty_files) if git.toplevel else False
    plan, plan_diags = build_plan(workspace, desired, snapshot, prune, str(tree.root), git.commit, dirty, preview)
    diags.extend(plan_diags)
    plan.diagnostics = diags.sorted()
    if diags.has_errors():
        return None, diags
    return plan, diags


def _prefix(tree: Tree, git: GitInfo) -> str:
    assert git.toplevel is not None
    try:
        rel = tree.root.relative_to(git.toplevel.resolve()).as_posix()
    except ValueError:
        return ""
    return "" if rel == "." else rel + "/"
