"""One apply from data to production: a deployment that names a model @latest, where a pipeline of this apply
registers that model's next version, is updated to that version in the same apply.

The reference stays pinned, to "the version job:X registers in this apply": the plan shows
`model: churn:4 -> churn:(next, after job:train)`, records the deferred reference (a saved plan carries it),
and apply resolves it once the run has registered the version, or fails the deployment's change when the run
registered none. `--no-promote` (or a workspace's `promote_latest: false`) keeps @latest at plan time.
"""

from __future__ import annotations

from dataclasses import replace

from mlops_gitops import versioning
from mlops_gitops.addresses import Address, Kind
from mlops_gitops.hashing import spec_hash
from mlops_gitops.plan.diff import document, field_changes
from mlops_gitops.plan.model import Action, Change
from mlops_gitops.spec.references import resolved_job_output
from mlops_gitops.state import Snapshot

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
