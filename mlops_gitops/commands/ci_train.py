"""`mlops-gitops ci --train` on a pull request (opt-in): the pipelines whose runs would register the next
version of a model that a deployment serves are run in a scratch workspace before merge, so that the plan's
comment shows that run's metrics against the version in service, and the gate's verdict, instead of "after
the run". The scratch workspace gets only what those models need (their data, environments, components and
jobs); the pull request's workspace is read, never written, so an unmerged pull request's training cannot
reach production."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.apply.planning import Planned
from mlops_gitops.apply.session import apply_project
from mlops_gitops.backends.factory import read_snapshot
from mlops_gitops.errors import GitOpsError
from mlops_gitops.plan.promotion import releases
from mlops_gitops.spec.config import WorkspaceConfig
from mlops_gitops.spec.project import Project
from mlops_gitops.state import ActualResource

SCRATCH = "pr-check"


@contextmanager
def _runtime(value: str) -> Iterator[None]:
    """The scratch workspace runs its pipelines whatever runtime the check previews the real one with."""
    before = os.environ.get("MLOPS_GITOPS_RUNTIME")
    os.environ["MLOPS_GITOPS_RUNTIME"] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MLOPS_GITOPS_RUNTIME", None)
        else:
            os.environ["MLOPS_GITOPS_RUNTIME"] = before


def train_in_check(project: Project, planned: Planned, scratch: Path) -> list[str]:
    """Run the trainings the plan defers to in a scratch workspace; the plan's releases then show their
    numbers. Returns what was trained (model names)."""
    models = sorted({c.deferred["model"]["model"] for c in planned.plan.changes if c.deferred.get("model")})
    if not models:
        return []
    shutil.rmtree(scratch, ignore_errors=True)
    config = project.config.model_copy(update={"workspaces": {**project.config.workspaces,
                                                              SCRATCH: WorkspaceConfig(path=str(scratch))}})
    here = replace(project, config=config)
    targets = [Address(Kind.MODEL, name) for name in models]
    with _runtime("process"):
        report = apply_project(here, SCRATCH, targets=targets)
    if report.result is not None and not report.result.ok:
        failed = ", ".join(str(o.change.address) for o in report.result.by_status("failed"))
        raise GitOpsError(f"the training in the scratch workspace failed ({failed}); see the log above")
    snapshot = read_snapshot(here, SCRATCH)
    trained: dict[str, ActualResource] = {}
    for name in models:
        latest = snapshot.latest(Kind.MODEL, name)
        if latest is not None:  # named as what it will be: the next version, not the scratch one's number
            trained[name] = replace(latest, address=Address(Kind.MODEL, name, "next"))
    planned.plan.releases = releases(planned.plan.changes, planned.snapshot, trained)
    return sorted(trained)
