"""What apply checks before a deployment serves a model version: the version a deferred reference names (the
one a run of this apply registered), and the deployment's release gate (`x-gitops.gate`, on the deployment or
on the model file) against the producing run's metrics, the version in service, and a conversion's parity.

A gate that fails stops that deployment's change, and so its traffic change, which depends on it; the running
version stays in service. The failure names each condition with both values and is raised as `release.gated`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.backends.base import Backend
from mlops_gitops.errors import WorkspaceError
from mlops_gitops.hashing import spec_hash
from mlops_gitops.plan.model import Change
from mlops_gitops.spec.kinds.common import parse_condition
from mlops_gitops.state import ActualResource, Snapshot

OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, ">": operator.gt, "<=": operator.le,
                                                  "<": operator.lt, "==": operator.eq}
GATED = (Kind.ONLINE_DEPLOYMENT, Kind.BATCH_DEPLOYMENT)


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


def _model(snapshot: Snapshot, ref: Any) -> ActualResource | None:
    name, _, version = str(ref or "").partition(":")
    return snapshot.resources.get(Address(Kind.MODEL, name, version)) if version else None


def in_service(snapshot: Snapshot, deployment: Address) -> ActualResource | None:
    """The model version serving now: the deployment's own, else that of its endpoint's busiest deployment."""
    actual = snapshot.resources.get(deployment)
    own = _model(snapshot, (actual.derived.get("refs") or {}).get("model")) if actual is not None else None
    if own is not None:
        return own
    endpoint, _, _ = deployment.name.partition("/")
    traffic = snapshot.resources.get(Address(Kind.TRAFFIC, endpoint))
    weights = (traffic.spec.get("traffic") or {}) if traffic is not None else {}
    for name, _ in sorted(weights.items(), key=lambda kv: -float(kv[1] or 0)):
        other = snapshot.resources.get(Address(deployment.kind, f"{endpoint}/{name}"))
        found = _model(snapshot, (other.derived.get("refs") or {}).get("model")) if other is not None else None
        if found is not None and float(weights[name] or 0) > 0:
            return found
    return None


def metrics_of(model: ActualResource) -> dict[str, float]:
    """A version's figures for gates: its producing run's metrics, and its conversion report's (conversion.*)."""
    out = {k: float(v) for k, v in (model.provenance.get("run.metrics") or {}).items()
           if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for k, v in (model.provenance.get("conversion") or {}).items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[f"conversion.{k}"] = float(v)
    return out


def gate_of(change: Change, candidate: ActualResource) -> dict[str, Any] | None:
    assert change.desired is not None
    return ((change.desired.spec.get("x-gitops") or {}).get("gate")
            or (candidate.spec.get("x-gitops") or {}).get("gate"))


def check_gate(gate: dict[str, Any], candidate: ActualResource, current: ActualResource | None) -> list[str]:
    """The failed conditions, each with both values; empty when the version may serve."""
    got = metrics_of(candidate)
    failed: list[str] = []
    conditions = [parse_condition(str(c)) for c in gate.get("metrics") or []]
    for metric, op, bound in conditions:
        if metric not in got:
            failed.append(f"{metric} {op} {bound:g}: {candidate.address} has no metric {metric} (its run wrote "
                          f"{', '.join(sorted(got)) or 'none'})")
        elif not OPS[op](got[metric], bound):
            failed.append(f"{metric} {op} {bound:g}: {candidate.address} has {got[metric]:g}")
    if gate.get("not_worse_than") == "current" and current is not None and current.address != candidate.address:
        before = metrics_of(current)
        tolerance = float(gate.get("tolerance") or 0.0)
        for metric, op, _ in conditions:
            if metric not in got or metric not in before or op == "==":
                continue
            higher_is_better = op in (">=", ">")
            worse = before[metric] - got[metric] if higher_is_better else got[metric] - before[metric]
            if worse > tolerance:
                failed.append(f"{metric} not worse than current: {candidate.address} has {got[metric]:g}, "
                              f"{current.address} in service has {before[metric]:g} (tolerance {tolerance:g})")
    conversion = candidate.provenance.get("conversion") or {}
    if gate.get("parity", True) and conversion.get("within_tolerance") is False:
        failed.append(f"parity: the ONNX conversion {candidate.address} is outside its tolerance "
                      f"({'; '.join(conversion.get('outside_tolerance') or [])})")
    return failed


def prepared(change: Change, backend: Backend, apply_id: str) -> Change:
    """The change as apply performs it: deferred references resolved, the release gate passed."""
    if change.address.kind not in GATED or change.desired is None:
        return change
    snapshot = backend.read()
    change = resolve_deferred(change, snapshot, apply_id)
    assert change.desired is not None
    candidate = _model(snapshot, (change.desired.derived.get("refs") or {}).get("model"))
    if candidate is None:
        return change
    gate = gate_of(change, candidate)
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
