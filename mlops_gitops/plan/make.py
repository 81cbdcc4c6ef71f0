"""One call from a loaded tree and a snapshot to a plan, with every diagnostic on the way."""

from __future__ import annotations

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.diagnostics import Diagnostics
from mlops_gitops.plan.build import PipelinePreview, build_plan
from mlops_gitops.plan.desired import DesiredState, build_desired
from mlops_gitops.plan.model import Plan
from mlops_gitops.spec.tree import Tree
from mlops_gitops.state import Snapshot
from mlops_gitops.validate import validate_tree
from mlops_gitops.vcs.git import GitInfo


def make_plan(tree: Tree, snapshot: Snapshot, workspace: str, prune: bool, git: GitInfo,
              strict: bool = False, preview: PipelinePreview | None = None,
              runtime: str | None = None, promote_latest: bool = True) -> tuple[Plan | None, Diagnostics]:
    """Validate against the tree and the workspace, then diff; no plan when there are errors. `runtime`: the
    workspace's (process, container, none), for what runs only in some of them."""
    diags = validate_tree(tree, snapshot.index())
    if strict:
        diags.promote_warnings()
    if diags.has_errors():
        return None, diags
    desired = build_desired(tree, snapshot)
    if runtime == "process":
        _custom_containers(tree, desired, snapshot, diags)
    dirty = any(f.startswith(_prefix(tree, git)) for f in git.dirty_files) if git.toplevel else False
    plan, plan_diags = build_plan(workspace, desired, snapshot, prune, str(tree.root), git.commit, dirty, preview,
                                  promote_latest)
    diags.extend(plan_diags)
    plan.diagnostics = diags.sorted()
    if diags.has_errors():
        return None, diags
    return plan, diags


def _custom_containers(tree: Tree, desired: DesiredState, snapshot: Snapshot, diags: Diagnostics) -> None:
    """DEP001: an online deployment whose environment is a serving image with an inference_config runs that
    image, which the process runtime cannot."""
    for res in tree.resources:
        found = desired.resources.get(res.address) if res.kind is Kind.ONLINE_DEPLOYMENT else None
        if found is None or found.spec.get("code_configuration"):
            continue
        env = found.spec.get("environment")
        config = env.get("inference_config") if isinstance(env, dict) else None
        ref = (found.derived.get("refs") or {}).get("environment")
        if config is None and ref:
            name, _, version = ref.partition(":")
            addr = Address(Kind.ENVIRONMENT, name, version)
            named = desired.resources.get(addr) or snapshot.resources.get(addr)
            config = named.spec.get("inference_config") if named is not None else None
        if config:
            line, col = res.pos(("environment",))
            diags.add(res.file, line, col, "DEP001", f"{res.address}: its environment is a serving image with an "
                      "inference_config (a custom container): it runs only under `runtime: container` in the "
                      "workspace's settings in mlops.yaml, and this workspace has runtime: process")


def _prefix(tree: Tree, git: GitInfo) -> str:
    assert git.toplevel is not None
    try:
        rel = tree.root.relative_to(git.toplevel.resolve()).as_posix()
    except ValueError:
        return ""
    return "" if rel == "." else rel + "/"
