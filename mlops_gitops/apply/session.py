"""Apply a project (or a saved plan) to its workspace: the whole use case, printing nothing.

Plan read-only first (bad input fails before anything is written), take the lock, converge after an
interrupted apply, re-plan when the workspace moved, check a saved plan against the workspace, begin,
execute, collect garbage, finish, raise the apply's event, and keep the endpoint host running. What
happens is told to a listener; the command that called prints it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops_gitops.addresses import Address
from mlops_gitops.apply.executor import ApplyResult, Outcome, execute
from mlops_gitops.apply.planning import Planned, compute
from mlops_gitops.apply.provenance import base_provenance, for_change
from mlops_gitops.backends.base import HostInfo
from mlops_gitops.backends.factory import workspace_backend
from mlops_gitops.diagnostics import Diagnostic
from mlops_gitops.errors import ConfigError, StalePlanError
from mlops_gitops.plan.model import Plan
from mlops_gitops.plan.planfile import SavedPlan
from mlops_gitops.spec.project import Project


@dataclass
class ApplyListener:
    """What the session tells its caller, in order: warnings, the plan, the question, each outcome."""

    warnings: Callable[[list[Diagnostic]], None] = lambda _d: None
    warn: Callable[[str], None] = lambda _m: None
    show: Callable[[Plan], None] = lambda _p: None
    confirm: Callable[[], bool] = lambda: True
    done: Callable[[Outcome], None] = lambda _o: None


@dataclass
class ApplyReport:
    planned: Planned
    result: ApplyResult | None = None  # None: nothing to do, or not confirmed
    confirmed: bool = True
    host_started: HostInfo | None = None  # the endpoint host was not running and was started
    interrupted: list[dict[str, Any]] = field(default_factory=list)

    @property
    def nothing_to_do(self) -> bool:
        return not self.planned.plan.has_changes


def check_saved(saved: SavedPlan, planned: Planned) -> None:
    snap = planned.snapshot
    if saved.workspace_id != snap.workspace_id:
        raise StalePlanError(f"{saved.path} was made for a different workspace (id {saved.workspace_id}, "
                             f"this one is {snap.workspace_id}); plan again")
    if not saved.signed_by(snap.plan_key()):
        raise StalePlanError(f"{saved.path} does not carry this workspace's signature: it was changed after it was "
                             "saved (or saved by another workspace); plan again and apply that file unchanged")
    if saved.serial != snap.serial:
        raise StalePlanError(f"{saved.path} is stale: the workspace changed since it was planned "
                             f"(state serial {saved.serial} -> {snap.serial}); plan again")
    if saved.fingerprint != planned.plan.fingerprint():
        raise StalePlanError(f"{saved.path} is stale: the repository changed since it was planned "
                             "(the actions it would take differ); plan again")


def apply_project(project: Project, workspace: str | None = None, saved: SavedPlan | None = None,
                  prune: bool | None = None, strict: bool = False, lock_timeout: float = 0.0,
                  parallelism: int = 4, reason: str = "", listener: ApplyListener | None = None,
                  promote: bool | None = None, targets: list[Address] | None = None) -> ApplyReport:
    listen = listener or ApplyListener()
    if saved is not None and workspace not in (None, saved.workspace):
        raise ConfigError(f"{saved.path} was planned for workspace '{saved.workspace}', not '{workspace}'")
    effective_prune = saved.prune if saved else prune
    with workspace_backend(project, saved.workspace if saved else workspace) as (name, backend):
        # Plan read-only first: invalid input fails here, before the lock creates anything.
        planned = compute(project, backend, name, backend.read(), effective_prune, strict, promote=promote,
                          targets=targets)
        listen.warnings(planned.warnings)
        with backend.lock("apply", reason, lock_timeout) as lock:
            report = ApplyReport(planned, interrupted=backend.interrupted())
            for run in report.interrupted:
                open_actions = ", ".join(f"{a} ({act})" for a, act in run["open"].items()) or "none in flight"
                listen.warn(f"apply {run['id']} by {run['who']} at {run['started_at']} was interrupted "
                            f"(actions in flight: {open_actions}); re-reading the workspace to converge")
                backend.mark_abandoned(run["id"])
            snapshot = backend.read()
            if planned.snapshot.workspace_id is None and snapshot.serial == 0 and not snapshot.resources:
                # A new workspace only got its id from taking the lock: the plan still holds.
                planned.snapshot = snapshot
                planned.plan.workspace_id = snapshot.workspace_id
            elif (snapshot.workspace_id, snapshot.serial) != (planned.snapshot.workspace_id, planned.snapshot.serial):
                planned = report.planned = compute(project, backend, name, snapshot, effective_prune, strict,
                                                   promote=promote, targets=targets)
            if saved is not None:
                check_saved(saved, planned)
            listen.show(planned.plan)
            if planned.plan.has_changes:
                if saved is None and not listen.confirm():
                    report.confirmed = False
                    return report
                report.result = _execute(planned, lock.id, parallelism, listen.done)
            serving = backend.serving
            if serving is not None:
                report.host_started = serving.ensure_serving()  # the running host is part of the actual state
    return report


def _execute(planned: Planned, lock_id: str, parallelism: int, done: Callable[[Outcome], None]) -> ApplyResult:
    backend, plan, git = planned.backend, planned.plan, planned.git
    assert backend is not None  # applies plan through the backend they execute with
    apply_id = str(uuid.uuid4())
    base = base_provenance(git, planned.workspace, apply_id)
    prefix = ""
    if git.toplevel is not None:
        rel = planned.project.root.relative_to(git.toplevel.resolve()).as_posix()
        prefix = "" if rel == "." else rel + "/"
    backend.begin_apply(apply_id, str(base["applied_by"]),
                        {"commit": git.commit, "pr": git.pr, "lock": lock_id, "serial": plan.serial,
                         "plan": plan.fingerprint()})
    result = execute(plan, backend, lambda c: for_change(base, c, git, prefix), on_done=done,
                     parallelism=parallelism, apply_id=apply_id)
    result.garbage_removed = backend.collect_garbage()
    counts = result.counts()
    status = "succeeded" if result.ok else "failed"
    summary = {**counts, "failed": len(result.by_status("failed")), "skipped": len(result.by_status("skipped"))}
    backend.finish_apply(apply_id, status, summary)
    backend.emit("apply.completed" if result.ok else "apply.failed", f"apply:{apply_id}", {
        "workspace": planned.workspace, **summary, "git.commit": git.commit, "git.pr": git.pr,
        "failures": [f"{o.change.address}: {o.message}" for o in result.by_status("failed")]})
    return result
