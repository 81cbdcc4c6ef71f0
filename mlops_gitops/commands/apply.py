"""`mlops-gitops apply [PLAN.json | PATH]`: lock, re-read, re-plan, execute, record provenance."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from mlops_gitops.apply.executor import ApplyResult, Outcome, execute
from mlops_gitops.apply.provenance import base_provenance, for_change
from mlops_gitops.backends.local import LocalBackend
from mlops_gitops.commands.common import EXIT_ERROR, EXIT_OK, err, open_project, out, workspace_backend
from mlops_gitops.commands.plan import Planned, compute, show
from mlops_gitops.errors import ConfigError, StalePlanError
from mlops_gitops.plan.model import Action
from mlops_gitops.plan.planfile import SavedPlan, load_plan

DONE_WORDS = {Action.RUN: "ran", Action.CREATE: "created", Action.UPDATE: "updated", Action.REPLACE: "replaced",
              Action.DELETE: "deleted", Action.ARCHIVE: "archived"}


def _saved_plan(target: str) -> SavedPlan | None:
    p = Path(target)
    if p.is_file() or target.endswith(".json"):
        return load_plan(p)
    return None


def _check_saved(saved: SavedPlan, planned: Planned) -> None:
    snap = planned.snapshot
    if saved.lineage != snap.lineage:
        raise StalePlanError(f"{saved.path} was made for a different workspace (lineage {saved.lineage}, "
                             f"this one is {snap.lineage}); plan again")
    if not saved.signed_by(snap.plan_key()):
        raise StalePlanError(f"{saved.path} does not carry this workspace's signature: it was changed after it was "
                             "saved (or saved by another workspace); plan again and apply that file unchanged")
    if saved.serial != snap.serial:
        raise StalePlanError(f"{saved.path} is stale: the workspace changed since it was planned "
                             f"(state serial {saved.serial} -> {snap.serial}); plan again")
    if saved.fingerprint != planned.plan.fingerprint():
        raise StalePlanError(f"{saved.path} is stale: the repository changed since it was planned "
                             "(the actions it would take differ); plan again")


def _describe(o: Outcome) -> str:
    c = o.change
    if o.status == "done" and o.unchanged:
        return f"{c.address}: {o.message}"
    if o.status == "done" and o.message:
        return f"{o.message}: {DONE_WORDS[c.action]} (planned as {c.address})"
    if o.status == "done":
        detail = ""
        if c.desired is not None and c.desired.artifacts and not c.action.removes:
            size = sum(a.size for a in c.desired.artifacts)
            detail = f" ({len(c.desired.artifacts)} file(s), {size} B)"
        return f"{c.address}: {DONE_WORDS[c.action]}{detail}"
    return f"{c.address}: {o.status.upper()}{': ' + o.message if o.message else ''}"


def _confirm(input_fn: Callable[[str], str]) -> bool:
    if input_fn is input and not sys.stdin.isatty():
        raise ConfigError("apply needs confirmation: run it in a terminal, or pass --auto-approve")
    answer = input_fn("\nDo you want to perform these actions? Only 'yes' will be accepted: ")
    return answer.strip() == "yes"


def apply(target: str = ".", workspace: str | None = None, auto_approve: bool = False, prune: bool | None = None,
          lock_timeout: float = 0.0, parallelism: int = 4, strict: bool = False, color: bool | None = None,
          reason: str = "", input_fn: Callable[[str], str] = input) -> int:
    saved = _saved_plan(target)
    project = open_project(saved.root if saved else target)
    if saved is not None and workspace not in (None, saved.workspace):
        raise ConfigError(f"{saved.path} was planned for workspace '{saved.workspace}', not '{workspace}'")
    effective_prune = saved.prune if saved else prune
    with workspace_backend(project, saved.workspace if saved else workspace) as (name, backend):
        # Plan read-only first: invalid input fails here, before the lock creates anything.
        planned = compute(project, backend, name, backend.read(), effective_prune, strict)
        with backend.lock("apply", reason, lock_timeout) as lock:
            for run in backend.interrupted():
                open_actions = ", ".join(f"{a} ({act})" for a, act in run["open"].items()) or "none in flight"
                err(f"Warning: apply {run['id']} by {run['who']} at {run['started_at']} was interrupted "
                    f"(actions in flight: {open_actions}); re-reading the workspace to converge")
                backend.mark_abandoned(run["id"])
            snapshot = backend.read()
            if planned.snapshot.lineage is None and snapshot.serial == 0 and not snapshot.resources:
                # A new workspace only got its lineage from taking the lock: the plan still holds.
                planned.snapshot = snapshot
                planned.plan.lineage = snapshot.lineage
            elif (snapshot.lineage, snapshot.serial) != (planned.snapshot.lineage, planned.snapshot.serial):
                planned = compute(project, backend, name, snapshot, effective_prune, strict)
            if saved is not None:
                _check_saved(saved, planned)
            plan = planned.plan
            if not plan.has_changes:
                show(plan, "text", color, False)
                _ensure_serving(backend)
                out("\nApply complete! Nothing to do: the workspace already matches the repository.")
                return EXIT_OK
            show(plan, "text", color, False)
            if saved is None and not auto_approve and not _confirm(input_fn):
                out("\nApply cancelled.")
                return EXIT_ERROR
            out("")
            result = _run(planned, lock.id, parallelism)
            _ensure_serving(backend)
    return _summarise(result)


def _ensure_serving(backend: LocalBackend) -> None:
    """The running endpoint host is part of the actual state: start it if endpoints should be served."""
    deployer = backend.deployer
    if deployer is None or not deployer.controller.config().endpoints or deployer.controller.info() is not None:
        return
    info = deployer.controller.ensure_started()
    out(f"Started the endpoint host at {info.url} (it was not running).")


def _run(planned: Planned, lock_id: str, parallelism: int) -> ApplyResult:
    backend, plan, git = planned.backend, planned.plan, planned.git
    backend.tree_root = planned.project.root
    apply_id = str(uuid.uuid4())
    base = base_provenance(git, planned.workspace, apply_id)
    prefix = ""
    if git.toplevel is not None:
        rel = planned.project.root.relative_to(git.toplevel.resolve()).as_posix()
        prefix = "" if rel == "." else rel + "/"
    backend.begin_apply(apply_id, str(base["applied_by"]),
                        {"commit": git.commit, "pr": git.pr, "lock": lock_id, "serial": plan.serial,
                         "plan": plan.fingerprint()})
    result = execute(plan, backend, lambda c: for_change(base, c, git, prefix),
                     on_done=lambda o: out(_describe(o)), parallelism=parallelism, apply_id=apply_id)
    result.garbage_removed = backend.collect_garbage()
    counts = result.counts()
    status = "succeeded" if result.ok else "failed"
    summary = {**counts, "failed": len(result.by_status("failed")), "skipped": len(result.by_status("skipped"))}
    backend.finish_apply(apply_id, status, summary)
    backend.emit("apply.completed" if result.ok else "apply.failed", f"apply:{apply_id}", {
        "workspace": planned.workspace, **summary, "git.commit": git.commit, "git.pr": git.pr,
        "failures": [f"{o.change.address}: {o.message}" for o in result.by_status("failed")]})
    return result


def _summarise(result: ApplyResult) -> int:
    n = result.counts()
    if result.ok:
        ran = f" Pipelines: {n['ran']} ran." if n["ran"] else ""
        out(f"\nApply complete! Resources: {n['added']} added, {n['changed']} changed, {n['destroyed']} destroyed."
            f"{ran}")
        return EXIT_OK
    failed, skipped = result.by_status("failed"), result.by_status("skipped")
    out(f"\nApply failed: {len(failed)} action(s) failed, {len(skipped)} skipped because a dependency failed; "
        f"{n['added']} added, {n['changed']} changed, {n['destroyed']} destroyed.")
    for o in failed:
        err(f"Error: {o.change.address}: {o.message}")
    return EXIT_ERROR
