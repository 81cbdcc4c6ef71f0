"""The plan: an ordered list of changes plus drift, with the state serial it was made against."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from mlops_gitops.addresses import Address
from mlops_gitops.diagnostics import Diagnostic
from mlops_gitops.state import DesiredResource

FORMAT_VERSION = "1.0"


class Action(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    ARCHIVE = "archive"
    RUN = "run"  # a pipeline job whose steps (some of them) must run; records its spec as well
    NOOP = "no-op"

    @property
    def symbol(self) -> str:
        return {"create": "+", "update": "~", "replace": "-/+", "delete": "-", "archive": "-", "run": ">",
                "no-op": " "}[self.value]

    @property
    def removes(self) -> bool:
        return self in (Action.DELETE, Action.ARCHIVE)


@dataclass(frozen=True)
class FieldChange:
    path: str
    before: Any
    after: Any
    forces_replace: bool = False


@dataclass
class Change:
    address: Address
    action: Action
    reason: str
    file: str | None = None
    line: int = 0
    fields: list[FieldChange] = field(default_factory=list)
    depends_on: list[Address] = field(default_factory=list)
    after_hash: str | None = None
    desired: DesiredResource | None = None  # not serialised; apply re-derives it from the tree
    steps: list[dict[str, str]] = field(default_factory=list)  # pipeline jobs: step, action (run|reuse), reason
    # references resolved only at apply: key -> {model, job, planned}: the version job registers in this apply
    deferred: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftEntry:
    address: Address
    fields: list[FieldChange]
    changed_at: str
    changed_by: str
    what: str = "changed"  # changed | archived | created


@dataclass
class Plan:
    workspace: str
    workspace_id: str | None
    serial: int
    root: str
    commit: str | None
    dirty: bool
    changes: list[Change] = field(default_factory=list)
    drift: list[DriftEntry] = field(default_factory=list)
    unmanaged: list[Address] = field(default_factory=list)  # in the workspace, not in the tree, kept
    diagnostics: list[Diagnostic] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how the local workspace differs, said once per plan
    conversions: list[dict[str, Any]] = field(default_factory=list)  # ONNX conversions: declared, or measured
    prune: bool = False
    created_at: str = ""
    promote_latest: bool = True
    releases: list[dict[str, Any]] = field(default_factory=list)  # deployments moving to another model version

    @property
    def actionable(self) -> list[Change]:
        return [c for c in self.changes if c.action is not Action.NOOP]

    def counts(self) -> dict[str, int]:
        out = {"create": 0, "change": 0, "delete": 0, "replace": 0, "run": 0}
        for c in self.actionable:
            if c.action is Action.RUN:
                out["run"] += 1
            elif c.action is Action.CREATE:
                out["create"] += 1
            elif c.action is Action.UPDATE:
                out["change"] += 1
            elif c.action is Action.REPLACE:
                out["replace"] += 1
            else:
                out["delete"] += 1
        return out

    @property
    def has_changes(self) -> bool:
        return bool(self.actionable)

    def fingerprint(self) -> str:
        """What apply must reproduce exactly: each action and the spec it writes."""
        from mlops_gitops.hashing import spec_hash

        return spec_hash([[str(c.address), c.action.value, c.after_hash] for c in self.actionable])

    def summary_line(self) -> str:
        n = self.counts()
        if not self.has_changes:
            return "No changes. The workspace matches the repository."
        add = n["create"] + n["replace"]
        delete = n["delete"] + n["replace"]
        ran = f", {n['run']} to run" if n["run"] else ""
        return f"Plan: {add} to create, {n['change']} to change, {delete} to delete{ran}."
