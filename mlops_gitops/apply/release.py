"""What apply checks before a deployment serves a model version: the version a deferred reference names (the
one a run of this apply registered), and the deployment's release gate (`x-gitops.gate`, on the deployment or
on the model file) against the producing run's metrics, the version in service, and a conversion's parity.

A gate that fails stops that deployment's change, and so its traffic change, which depends on it; the running
version stays in service. The failure names each condition with both values and is raised as `release.gated`.
"""

from __future__ import annotations

from dataclasses import replace

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.backends.base import Backend
from mlops_gitops.errors import WorkspaceError
from mlops_gitops.hashing import spec_hash
from mlops_gitops.plan.gates import GATED, check_gate, gate_of, in_service, metrics_of, model_version
from mlops_gitops.plan.model import Change
from mlops_gitops.state import Snapshot


class GateError(WorkspaceError):
    """A release gate stopped a deployment's change."""


def resolve_deferred(change: Change, snapshot: Snapshot, apply_id: str) -> Change:
    """The change with its deferred references pinned to the versions the runs of this apply registered."""
    if not change.deferred or change.desired is None:
        return change
    refs = dict(change.desired.derived.get("refs") or {})
    for key, info in change.deferred.items():
        name, job = info["model"], info["job"]
        ran = snapshot.resources.get(Address(Kind.JOB, job))
        run_id = (ran.provenance.get("run.id") if ran is not None and
                  ran.provenance.get("apply_id") == apply_id else None)
        made = [r for r in snapshot.versions(Kind.MODEL, name)
                if run_id and r.provenance.get("run.id") == run_id and r.status == "active"]
        if not made:
            raise WorkspaceError(f"job:{job} registered no new version of model {name} in this apply (its run "
                                 f"{run_id or 'did not happen'}; it may have reproduced an existing version's "
                                 f"files): {change.address} was planned to serve it and is left as it is")
        refs[key] = f"{name}:{max(made, key=lambda r: r.address.sort_key()).address.version}"
    derived = {**change.desired.derived, "refs": refs}
    desired = replace(change.desired, derived=derived,
                      spec_hash=spec_hash({"spec": change.desired.spec, "derived": derived}))
    return replace(change, desired=desired)


def prepared(change: Change, backend: Backend, apply_id: str) -> Change:
    """The change as apply performs it: deferred references resolved, the release gate passed."""
    if change.address.kind not in GATED or change.desired is None:
        return change
    snapshot = backend.read()
    change = resolve_deferred(change, snapshot, apply_id)
    assert change.desired is not None
    candidate = model_version(snapshot, (change.desired.derived.get("refs") or {}).get("model"))
    if candidate is None:
        return change
    gate = gate_of(change.desired.spec, candidate)
    current = in_service(snapshot, change.address)
    if not gate or (current is not None and current.address == candidate.address):
        return change
    failed = check_gate(gate, candidate, current)
    if failed:
        backend.emit("release.gated", str(change.address), {
            "model": str(candidate.address), "in_service": str(current.address) if current else None,
            "failed": failed, "metrics": metrics_of(candidate),
            "in_service_metrics": metrics_of(current) if current else {}})
        raise GateError(f"gated: {change.address} stays on {current.address if current else 'what it serves'}; "
                        + "; ".join(failed))
    return change
