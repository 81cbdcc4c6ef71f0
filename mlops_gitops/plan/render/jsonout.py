"""The JSON form of a plan (also the saved-plan file format)."""

from __future__ import annotations

from typing import Any

from mlops_gitops import __version__
from mlops_gitops.plan.model import FORMAT_VERSION, Change, DriftEntry, FieldChange, Plan


def _field(f: FieldChange) -> dict[str, Any]:
    return {"path": f.path, "before": f.before, "after": f.after, "forces_replace": f.forces_replace}


def _change(c: Change) -> dict[str, Any]:
    return {
        "address": str(c.address),
        "kind": c.address.kind.value,
        "name": c.address.name,
        "version": c.address.version,
        "action": c.action.value,
        "reason": c.reason,
        **({"steps": c.steps} if c.steps else {}),
        **({"deferred": c.deferred} if c.deferred else {}),
        "file": c.file,
        "line": c.line,
        "depends_on": [str(a) for a in c.depends_on],
        "after_hash": c.after_hash,
        "fields": [_field(f) for f in c.fields],
    }


def _drift(d: DriftEntry) -> dict[str, Any]:
    return {"address": str(d.address), "what": d.what, "changed_at": d.changed_at, "changed_by": d.changed_by,
            "fields": [_field(f) for f in d.fields]}


def plan_to_dict(plan: Plan, show_noop: bool = False) -> dict[str, Any]:
    counts = plan.counts()
    return {
        "format_version": FORMAT_VERSION,
        "tool_version": __version__,
        "created_at": plan.created_at,
        "workspace": {"name": plan.workspace, "workspace_id": plan.workspace_id, "serial": plan.serial},
        "source": {"root": plan.root, "commit": plan.commit, "dirty": plan.dirty},
        "prune": plan.prune,
        "promote_latest": plan.promote_latest,
        "fingerprint": plan.fingerprint(),
        "summary": {**counts, "has_changes": plan.has_changes, "text": plan.summary_line()},
        "resource_changes": [_change(c) for c in plan.changes if show_noop or c.action.value != "no-op"],
        "resource_drift": [_drift(d) for d in plan.drift],
        "not_in_repository": [str(a) for a in plan.unmanaged],
        "notes": list(plan.notes),
        "conversions": list(plan.conversions),
        "releases": list(plan.releases),
        "diagnostics": [d.to_dict() for d in plan.diagnostics],
    }
