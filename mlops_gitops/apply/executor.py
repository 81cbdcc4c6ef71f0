"""Walk the plan's graph: independent actions in parallel, a failure stops only its dependents."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops_gitops import progress
from mlops_gitops.addresses import Address, Kind
from mlops_gitops.apply.release import prepared
from mlops_gitops.apply.rollout import walk
from mlops_gitops.backends.base import Backend
from mlops_gitops.errors import GitOpsError
from mlops_gitops.faults import failpoint
from mlops_gitops.graph import Graph, run_dag
from mlops_gitops.plan.model import Action, Change, Plan

DOING = {Action.CREATE: "creating", Action.UPDATE: "updating", Action.REPLACE: "replacing", Action.RUN: "running",
         Action.DELETE: "deleting", Action.ARCHIVE: "archiving", Action.NOOP: "checking"}


@dataclass
class Outcome:
    change: Change
    status: str  # done | failed | skipped
    message: str = ""
    unchanged: bool = False  # done, but nothing new was written (a run reproduced an existing version)


@dataclass
class ApplyResult:
    apply_id: str
    outcomes: list[Outcome] = field(default_factory=list)
    garbage_removed: int = 0

    def by_status(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def ok(self) -> bool:
        return not self.by_status("failed") and not self.by_status("skipped")

    def counts(self) -> dict[str, int]:
        done = [o.change.action for o in self.by_status("done") if not o.unchanged]
        return {"added": sum(a in (Action.CREATE, Action.REPLACE) for a in done),
                "changed": sum(a is Action.UPDATE for a in done), "ran": sum(a is Action.RUN for a in done),
                "destroyed": sum(a.removes or a is Action.REPLACE for a in done)}


@dataclass(frozen=True)
class Performed:
    """What one change did, where that is not simply what the plan named."""

    note: str = ""
    unchanged: bool = False  # nothing new was written: a run reproduced an existing version


def _perform(backend: Backend, change: Change, provenance: dict[str, Any], apply_id: str) -> Performed:
    """Carry out one change."""
    # An action that touches more than the metadata store (copies files) journals "begin" in a commit
    # of its own first; a metadata-only action is one transaction that writes begin and end together.
    external = change.desired is not None and bool(change.desired.artifacts)
    if external or change.action.removes:
        backend.journal(apply_id, change.address, change.action.value, "begin")
    failpoint("action-begun")
    if change.action in (Action.CREATE, Action.UPDATE, Action.REPLACE, Action.RUN):
        assert change.desired is not None
        written = backend.put(change.desired, change.action.value, provenance, apply_id, journal_begin=not external)
        if written.address != change.address:  # an asset made by a run: the run decided its version
            if written.provenance.get("apply_id") == apply_id:
                return Performed(f"{written.address}")
            return Performed(f"unchanged: the run reproduced the files of {written.address}", unchanged=True)
    elif change.action is Action.ARCHIVE:
        backend.set_status(change.address, "archived", provenance, apply_id, origin="apply")
    elif change.action is Action.DELETE:
        backend.delete(change.address, provenance, apply_id, origin="apply")
    return Performed()


def execute(plan: Plan, backend: Backend, provenance_for: Callable[[Change], dict[str, Any]],
            on_done: Callable[[Outcome], None] = lambda _o: None, parallelism: int = 4,
            apply_id: str | None = None) -> ApplyResult:
    apply_id = apply_id or str(uuid.uuid4())
    result = ApplyResult(apply_id)
    changes = {c.address: c for c in plan.actionable}
    graph: Graph[Address] = Graph()
    for c in changes.values():
        graph.add(c.address, [d for d in c.depends_on if d in changes])

    def finish(addr: Address, status: str, message: str = "", unchanged: bool = False) -> None:
        outcome = Outcome(changes[addr], status, message, unchanged)
        result.outcomes.append(outcome)
        on_done(outcome)

    def work(addr: Address) -> Performed:
        change = changes[addr]
        with progress.task(f"{DOING[change.action]} {addr}"):
            if not change.action.removes:
                change = prepared(change, backend, apply_id)  # deferred versions pinned, release gate passed
            provenance = provenance_for(change)
            if change.address.kind is Kind.TRAFFIC and change.action is Action.UPDATE:
                walked = walk(change, backend, provenance, apply_id)  # the steps below the final split
                if walked is not None:
                    provenance = {**provenance, "rollout": {"done": True, **walked}}
            return _perform(backend, change, provenance, apply_id)

    def settle(addr: Address, performed: Performed | None, exc: BaseException | None) -> bool:
        if exc is None and performed is not None:
            finish(addr, "done", performed.note, performed.unchanged)
            return True
        message = str(exc) if isinstance(exc, GitOpsError) else f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(GitOpsError):
            backend.journal(apply_id, addr, changes[addr].action.value, "failed", message)
        finish(addr, "failed", message)
        return False

    run_dag(graph, work, settle, skip=lambda addr: finish(addr, "skipped", "a dependency failed"),
            parallelism=parallelism, key=lambda a: a.sort_key())
    return result
