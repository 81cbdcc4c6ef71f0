"""Release gates (`x-gitops.gate`) as data: a model version's figures, the version in service, and which
conditions a candidate fails. Plan shows the verdicts a pull request's model faces; apply enforces them."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.spec.kinds.common import parse_condition
from mlops_gitops.state import ActualResource, Snapshot

OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, ">": operator.gt, "<=": operator.le,
                                                  "<": operator.lt, "==": operator.eq}
GATED = (Kind.ONLINE_DEPLOYMENT, Kind.BATCH_DEPLOYMENT)


def model_version(snapshot: Snapshot, ref: Any) -> ActualResource | None:
    name, _, version = str(ref or "").partition(":")
    return snapshot.resources.get(Address(Kind.MODEL, name, version)) if version else None


def in_service(snapshot: Snapshot, deployment: Address) -> ActualResource | None:
    """The model version serving now: the deployment's own, else that of its endpoint's busiest deployment."""
    actual = snapshot.resources.get(deployment)
    own = model_version(snapshot, (actual.derived.get("refs") or {}).get("model")) if actual is not None else None
    if own is not None:
        return own
    endpoint, _, _ = deployment.name.partition("/")
    traffic = snapshot.resources.get(Address(Kind.TRAFFIC, endpoint))
    weights = (traffic.spec.get("traffic") or {}) if traffic is not None else {}
    for name, _ in sorted(weights.items(), key=lambda kv: -float(kv[1] or 0)):
        other = snapshot.resources.get(Address(deployment.kind, f"{endpoint}/{name}"))
        found = model_version(snapshot, (other.derived.get("refs") or {}).get("model")) if other is not None else None
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


def gate_of(deployment_spec: dict[str, Any], candidate: ActualResource | None) -> dict[str, Any] | None:
    """The deployment's gate, else the one the model's file declares."""
    found = (deployment_spec.get("x-gitops") or {}).get("gate")
    if not found and candidate is not None:
        found = (candidate.spec.get("x-gitops") or {}).get("gate")
    return found or None


def importance_changes(candidate: dict[str, Any] | None, current: dict[str, Any] | None,
            notable: float) -> list[dict[str, Any]]:
    """Features whose importance moved by more than `notable` between the version in service and a candidate
    (by how much, largest first), or that entered or left the top three."""
    if not candidate or not current:
        return []
    new = {f["name"]: float(f["mean"]) for f in candidate.get("features") or []}
    old = {f["name"]: float(f["mean"]) for f in current.get("features") or []}
    top_new = [f["name"] for f in (candidate.get("features") or [])[:3]]
    top_old = [f["name"] for f in (current.get("features") or [])[:3]]
    out = []
    for name in dict.fromkeys([*new, *old]):
        a, b = old.get(name), new.get(name)
        moved = (b or 0.0) - (a or 0.0)
        if abs(moved) > notable or (name in top_new) != (name in top_old):
            out.append({"feature": name, "in_service": a, "candidate": b, "delta": round(moved, 6),
                        "rank": (top_old.index(name) + 1 if name in top_old else None,
                                 top_new.index(name) + 1 if name in top_new else None)})
    return sorted(out, key=lambda c: -abs(c["delta"]))
