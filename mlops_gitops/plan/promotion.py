"""One apply from data to production: a deployment that names a model @latest, where a pipeline of this apply
registers that model's next version, is updated to that version in the same apply.

The reference stays pinned, to "the version job:X registers in this apply": the plan shows
`model: churn:4 -> churn:(next, after job:train)`, records the deferred reference (a saved plan carries it),
and apply resolves it once the run has registered the version, or fails the deployment's change when the run
registered none. `--no-promote` (or a workspace's `promote_latest: false`) keeps @latest at plan time.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mlops_gitops import versioning
from mlops_gitops.addresses import Address, Kind
from mlops_gitops.diagnostics import Diagnostics, Severity
from mlops_gitops.hashing import spec_hash
from mlops_gitops.plan.desired import DesiredState
from mlops_gitops.plan.diff import document, field_changes
from mlops_gitops.plan.gates import check_gate, gate_of, importance_changes, in_service, metrics_of, model_version
from mlops_gitops.plan.model import Action, Change
from mlops_gitops.spec.kinds.common import parse_condition
from mlops_gitops.spec.references import resolved_job_output
from mlops_gitops.state import ActualResource, Snapshot

PROMOTED = (Kind.ONLINE_DEPLOYMENT, Kind.BATCH_DEPLOYMENT)


def registered_in_apply(changes: list[Change], snapshot: Snapshot) -> dict[str, tuple[str, str]]:
    """Models the runs of this apply register: name -> (job, planned version). A model file made of a job's
    output registers it; so does a job whose earlier run registered the model with MLflow."""
    running = {c.address.name for c in changes if c.action is Action.RUN}
    out: dict[str, tuple[str, str]] = {}
    for c in changes:
        if c.address.kind is not Kind.MODEL or c.desired is None or c.action is not Action.CREATE:
            continue
        ref = resolved_job_output((c.desired.derived.get("refs") or {}).get("path"))
        if ref is not None and ref.job in running and c.address.version:
            out[c.address.name] = (ref.job, c.address.version)
    for name in sorted({a.name for a in snapshot.resources if a.kind is Kind.MODEL} - set(out)):
        latest = snapshot.latest(Kind.MODEL, name)
        job = str((latest.provenance if latest else {}).get("job") or "")
        if latest is not None and latest.provenance.get("by") == "mlflow.register_model" and job in running:
            out[name] = (job, versioning.next_version(snapshot, Kind.MODEL, name))
    return out


def promote(changes: list[Change], snapshot: Snapshot, enabled: bool) -> list[str]:
    """Defer the @latest model references of deployments to the versions this apply registers. Returns notes
    for the plan (what --no-promote left on the old version)."""
    made = registered_in_apply(changes, snapshot)
    notes: list[str] = []
    for c in changes:
        d = c.desired
        if d is None or c.address.kind not in PROMOTED or c.action.removes:
            continue
        for key, name in sorted(d.floating.items()):
            if key != "model" or name not in made:
                continue
            job, planned = made[name]
            if not enabled:
                notes.append(f"{c.address} stays on {(d.derived.get('refs') or {}).get(key)}: promotion of "
                             f"@latest is off, so the version job:{job} registers waits for the next apply")
                continue
            _defer(c, snapshot, key, name, job, planned)
    return notes


def _defer(c: Change, snapshot: Snapshot, key: str, name: str, job: str, planned: str) -> None:
    assert c.desired is not None
    refs = {**(c.desired.derived.get("refs") or {}), key: f"{name}:{planned}"}
    derived = {**c.desired.derived, "refs": refs}
    model = Address(Kind.MODEL, name, planned)
    c.desired = replace(c.desired, derived=derived, spec_hash=spec_hash({"spec": c.desired.spec, "derived": derived}),
                        depends_on={*c.desired.depends_on, model, Address(Kind.JOB, job)})
    actual = snapshot.resources.get(c.address)
    before = document(actual.spec, actual.derived, actual.schema_name) if actual is not None else None
    c.fields = [f if f.path != f"{key} (resolved)" else replace(f, after=f"{name}:(next, after job:{job})")
                for f in field_changes(c.address.kind, before,
                                       document(c.desired.spec, derived, c.desired.schema_name), snapshot.masker())]
    c.after_hash = c.desired.spec_hash
    c.depends_on = sorted({*c.depends_on, model, Address(Kind.JOB, job)}, key=lambda a: a.sort_key())
    c.deferred = {key: {"model": name, "job": job, "planned": planned}}
    if c.action is Action.NOOP:
        c.action = Action.UPDATE
        c.reason = f"serves the version of {name} that job:{job} registers in this apply"
    elif c.action is not Action.CREATE:
        c.reason += f"; serves the version of {name} that job:{job} registers in this apply"


def releases(changes: list[Change], snapshot: Snapshot,
             trained: dict[str, ActualResource] | None = None) -> list[dict[str, Any]]:
    """Each deployment change that serves another model version, for review: the version in service and the
    candidate, their metrics with deltas, and the gate verdict (at apply, where the candidate is not made yet).
    `trained`: per model name, the version a pull request's check trained elsewhere (`ci --train`), which
    stands in for a candidate this apply's run will register."""
    planned_models = {c.address: c.desired for c in changes if c.address.kind is Kind.MODEL and c.desired}
    out: list[dict[str, Any]] = []
    for c in changes:
        d = c.desired
        if d is None or c.address.kind not in PROMOTED or c.action.removes or c.action is Action.NOOP:
            continue
        ref = str((d.derived.get("refs") or {}).get("model") or "")
        current = in_service(snapshot, c.address)
        if not ref or (current is not None and f"{current.address.name}:{current.address.version}" == ref):
            continue
        deferred = c.deferred.get("model")
        candidate = (trained or {}).get(deferred["model"]) if deferred else model_version(snapshot, ref)
        model_spec = (planned_models.get(Address(Kind.MODEL, *ref.split(":", 1))) if ":" in ref else None)
        gate = gate_of(d.spec, candidate) or (gate_of(model_spec.spec, None) if model_spec else None)
        got = metrics_of(candidate) if candidate is not None else {}
        before = metrics_of(current) if current is not None else {}
        named = [parse_condition(str(t))[0] for t in (gate or {}).get("metrics") or []]
        rows = [{"metric": m, "in_service": before.get(m), "candidate": got.get(m),
                 "delta": got[m] - before[m] if m in got and m in before else None}
                for m in dict.fromkeys([*named, *sorted(set(got) | set(before))])]
        verdict: list[str] | None = check_gate(gate, candidate, current) if gate and candidate is not None else None
        explain = ((model_spec.spec.get("x-gitops") or {}).get("explain") if model_spec else None) or {}
        importance = importance_changes(candidate.provenance.get("importance") if candidate else None,
                                        current.provenance.get("importance") if current else None,
                                        float(explain.get("notable", 0.02)))
        out.append({"deployment": str(c.address), "in_service": str(current.address) if current else None,
                    "importance": importance, "explain_on": explain.get("data") if candidate is None else None,
                    "trained_in_check": candidate.provenance.get("run.id") if deferred and candidate else None,
                    "candidate": f"{deferred['model']}:(next, after job:{deferred['job']})" if deferred else ref,
                    "metrics": rows, "gate": list((gate or {}).get("metrics") or []),
                    "not_worse_than": (gate or {}).get("not_worse_than"),
                    "verdict": "at apply" if gate and verdict is None else (
                        "passes" if verdict == [] else ("; ".join(verdict) if verdict else "no gate"))})
    return out


def unknown_gate_metrics(desired: DesiredState, snapshot: Snapshot, diags: Diagnostics) -> None:
    """GATE001 (a warning: the training code of the same pull request may add the metric): a deployment's gate
    names a metric that the runs behind its model's latest version did not write. At validate and plan."""
    for address, d in desired.resources.items():
        res = desired.by_spec.get(address)
        if res is None or address.kind not in PROMOTED:
            continue
        conditions = ((d.spec.get("x-gitops") or {}).get("gate") or {}).get("metrics") or []
        ref = str((d.derived.get("refs") or {}).get("model") or "")
        latest = snapshot.latest(Kind.MODEL, ref.split(":", 1)[0]) if conditions and ref else None
        known = set((latest.provenance.get("run.metrics") or {}) if latest is not None else {})
        if latest is None or not known:
            continue
        for i, text in enumerate(conditions):
            metric = parse_condition(str(text))[0]
            if metric not in known and not metric.startswith("conversion."):
                line, col = res.pos(("x-gitops", "gate", "metrics", i))
                diags.add(res.file, line, col, "GATE001",
                          f"gate metric '{metric}': the run behind {latest.address} wrote "
                          f"{', '.join(sorted(known))}; apply fails this gate unless the next run writes it",
                          severity=Severity.WARNING)


def interrupted_rollouts(changes: list[Change], snapshot: Snapshot) -> None:
    """A traffic change whose actual split a rollout left (killed apply, or rolled back) says so."""
    for c in changes:
        actual = snapshot.resources.get(c.address) if c.address.kind is Kind.TRAFFIC else None
        rollout = (actual.provenance.get("rollout") or {}) if actual is not None else {}
        if not rollout or rollout.get("done") or c.action is Action.NOOP:
            continue
        if rollout.get("rolled_back"):
            c.reason += "; the last rollout was rolled back: it starts again from the first step"
        else:
            c.reason = (f"a rollout stopped at step {rollout.get('step')} of {rollout.get('of')} "
                        f"({rollout.get('deployment')} at {rollout.get('share')}%) when its apply was interrupted: "
                        "apply goes on from there")
