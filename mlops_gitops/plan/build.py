"""Build the plan: diff desired vs actual, add prune and drift, refuse unsafe deletions, order by graph."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mlops_gitops import versioning
from mlops_gitops.addresses import Address, Kind
from mlops_gitops.diagnostics import Diagnostics, Severity
from mlops_gitops.graph import Graph
from mlops_gitops.kinds import CONSUMERS, VERSIONED
from mlops_gitops.plan.desired import DesiredState
from mlops_gitops.plan.diff import document, field_changes
from mlops_gitops.plan.model import Action, Change, DriftEntry, Plan
from mlops_gitops.plan.promotion import interrupted_rollouts, promote, releases, unknown_gate_metrics
from mlops_gitops.spec.references import resolved_job_output
from mlops_gitops.state import ActualResource, DesiredResource, Snapshot

# A pipeline job's steps as a run would treat them now: [{step, action: run|reuse, reason}], or a reason
# why the pipeline cannot be previewed (it then plans to run, and the run reports the problem); None where
# applying a job only records it.
PipelinePreview = Callable[[DesiredResource, dict[Address, DesiredResource]], list[dict[str, str]] | str | None]


def _with_run(change: Change, desired: DesiredState, preview: PipelinePreview | None) -> Change:
    res = change.desired
    if preview is None or res is None or res.address.kind is not Kind.JOB or \
            res.spec.get("type", "command") not in ("pipeline", "command"):
        return change
    steps = preview(res, desired.resources)
    if steps is None:
        return change
    if isinstance(steps, str):
        change.action, change.reason = Action.RUN, f"{change.reason}; {steps}"
        return change
    change.steps = steps
    running = [s["step"] for s in steps if s["action"] == "run"]
    if running:
        what = "changed in the repository" if change.action is not Action.NOOP else "inputs changed"
        if change.action is Action.CREATE:
            what = change.reason
        change.action, change.reason = Action.RUN, f"{what}: {len(running)} of {len(steps)} step(s) run"
    elif change.action is not Action.NOOP:
        change.reason += f"; all {len(steps)} step(s) reused"
    return change


def _after_runs(changes: list[Change], snapshot: Snapshot, diags: Diagnostics) -> None:
    """Assets made of a job's outputs are registered from the run this apply makes, when it makes one."""
    running = {c.address.name for c in changes if c.action is Action.RUN}
    for c in changes:
        ref = resolved_job_output((c.desired.derived.get("refs") or {}).get("path")) if c.desired else None
        if ref is None:
            continue
        job = ref.job
        if job in running:
            if c.action is Action.NOOP and c.desired is not None and c.desired.auto_version:
                c.action = Action.CREATE  # the next version, unless the run reproduces the same files
                version = versioning.next_version(snapshot, c.address.kind, c.address.name)
                c.address = c.desired.address = Address(c.address.kind, c.address.name, version)
                c.desired.spec["version"] = version
            c.reason = f"registered from the run of job:{job} in this apply (version and content known after it)"
        elif not (c.desired and c.desired.derived.get("paths")):
            c.action, c.reason = Action.NOOP, f"waits for a completed run of job:{job}"
            diags.add(c.file or "", c.line, 0, "PLAN003",
                      f"{c.address.kind.value} '{c.address.name}' is made by job:{job}, which has no completed run "
                      "in this workspace and will not run in this apply (runtime: none); it is not registered yet",
                      severity=Severity.WARNING)


def _change_for(desired: DesiredResource, actual: ActualResource | None, snapshot: Snapshot) -> Change:
    after = document(desired.spec, desired.derived, desired.schema_name)
    base = dict(address=desired.address, file=desired.source_file, line=desired.source_line,
                after_hash=desired.spec_hash, desired=desired, depends_on=sorted(desired.depends_on))
    if actual is None:
        reason = "new"
        source = (desired.derived.get("refs") or {}).get("x-gitops.convert.from")
        if desired.auto_version:
            prev = snapshot.latest(desired.address.kind, desired.address.name, include_archived=True)
            if prev is not None:
                reason = f"content changed since version {prev.address.version}"
        if source:
            reason += f"; the ONNX conversion of {source}, checked for parity at apply"
        fields = field_changes(desired.address.kind, None, after, snapshot.masker())
        return Change(action=Action.CREATE, reason=reason, fields=fields, **base)  # type: ignore[arg-type]
    if actual.spec_hash == desired.spec_hash and actual.status == "active":
        return Change(action=Action.NOOP, reason="up to date", **base)  # type: ignore[arg-type]
    before = document(actual.spec, actual.derived, actual.schema_name)
    fields = field_changes(desired.address.kind, before, after, snapshot.masker())
    if actual.status != "active":
        reason = f"restore {actual.status} resource"
    elif actual.drifted:
        reason = "changed outside the repository; restore the repository's version"
    else:
        reason = "changed in the repository"
    action = Action.REPLACE if any(f.forces_replace for f in fields) else Action.UPDATE
    return Change(action=action, reason=reason, fields=fields, **base)  # type: ignore[arg-type]


def _removals(desired: DesiredState, snapshot: Snapshot, prune: bool) -> tuple[list[Change], list[Address]]:
    names = desired.names()
    removals: list[Change] = []
    kept: list[Address] = []
    for addr, actual in sorted(snapshot.resources.items(), key=lambda kv: kv[0].sort_key()):
        if actual.status != "active" or addr in desired.resources:
            continue
        if addr.kind in VERSIONED and (addr.kind, addr.name) in names:
            continue  # older versions of a name still in the tree are history, not drift
        if addr.kind is Kind.TRAFFIC and Address(Kind.ONLINE_ENDPOINT, addr.name) in desired.resources:
            continue  # the endpoint no longer declares traffic: traffic is left as it is
        if not actual.managed or not prune:
            kept.append(addr)
            continue
        action = Action.ARCHIVE if addr.kind in VERSIONED else Action.DELETE
        before = document(actual.spec, actual.derived, actual.schema_name)
        removals.append(Change(addr, action, "not in the repository (--prune)", file=actual.source_file,
                               fields=field_changes(addr.kind, before, None, snapshot.masker())))
    return removals, kept


def _drift(snapshot: Snapshot, desired: DesiredState) -> list[DriftEntry]:
    out = []
    for addr, actual in sorted(snapshot.resources.items(), key=lambda kv: kv[0].sort_key()):
        if actual.status != "active" and addr in desired.resources:  # archived while the tree still wants it
            out.append(DriftEntry(addr, [], actual.updated_at, str(actual.provenance.get("applied_by", "?")),
                                  actual.status))
        elif actual.drifted and actual.applied_spec is not None:
            fields = field_changes(addr.kind, actual.applied_spec, actual.spec, snapshot.masker())
            out.append(DriftEntry(addr, fields, actual.updated_at, str(actual.provenance.get("applied_by", "?"))))
        elif not actual.managed:
            out.append(DriftEntry(addr, [], actual.created_at, str(actual.provenance.get("applied_by", "?")),
                                  "created"))
    return out


def _final_traffic(desired: DesiredState, snapshot: Snapshot, removed: set[Address]) -> dict[str, dict[str, Any]]:
    """Traffic per online endpoint after the plan: the tree's where it declares it, else the workspace's."""
    out: dict[str, dict[str, Any]] = {}
    for addr, actual in snapshot.resources.items():
        if addr.kind is Kind.TRAFFIC and addr not in removed:
            out[addr.name] = actual.spec
    for addr, res in desired.resources.items():
        if addr.kind is Kind.TRAFFIC:
            out[addr.name] = res.spec
    return out


def live_users(model: Address, desired: DesiredState, snapshot: Snapshot, removed: set[Address]) -> list[str]:
    """Deployments that will still be live after the plan and use this model version."""
    traffic = _final_traffic(desired, snapshot, removed)
    specs: dict[Address, dict[str, Any]] = {a: r.spec for a, r in snapshot.resources.items()}
    specs.update({a: r.spec for a, r in desired.resources.items()})
    batch_defaults = {a.name: (s.get("defaults") or {}).get("deployment_name")
                      for a, s in specs.items() if a.kind is Kind.BATCH_ENDPOINT}
    deployments: dict[Address, dict[str, Any]] = {
        a: r.derived for a, r in snapshot.resources.items()
        if a.kind in (Kind.ONLINE_DEPLOYMENT, Kind.BATCH_DEPLOYMENT) and a not in removed}
    deployments.update({a: r.derived for a, r in desired.resources.items()
                        if a.kind in (Kind.ONLINE_DEPLOYMENT, Kind.BATCH_DEPLOYMENT)})
    users = []
    wanted = f"{model.name}:{model.version}"
    for addr, derived in deployments.items():
        if (derived.get("refs") or {}).get("model") != wanted:
            continue
        endpoint, name = addr.name.split("/", 1)
        if addr.kind is Kind.ONLINE_DEPLOYMENT:
            t = traffic.get(endpoint, {})
            live = (t.get("traffic") or {}).get(name, 0) > 0 or (t.get("mirror_traffic") or {}).get(name, 0) > 0
        else:
            live = batch_defaults.get(endpoint) == name
        if live:
            users.append(str(addr))
    return users


def what_uses(users: list[str]) -> str:
    """Why deployments hold a model version, and what releases it: traffic for online ones, the default for batch."""
    online = [u for u in users if u.startswith(Kind.ONLINE_DEPLOYMENT.value + ":")]
    batch = [u for u in users if u not in online]
    why = []
    if online:
        why.append(f"online deployment(s) {', '.join(online)} receive traffic: move it to another deployment "
                   "(the endpoint's traffic in the repository, or `mlops-gitops endpoint set-traffic`)")
    if batch:
        why.append(f"batch deployment(s) {', '.join(batch)} are their endpoint's default: make another deployment "
                   "the default (`defaults.deployment_name` of the batch endpoint)")
    return "; ".join(why)


def _guard(changes: list[Change], desired: DesiredState, snapshot: Snapshot, diags: Diagnostics) -> None:
    removed = {c.address for c in changes if c.action.removes}
    for c in changes:
        if not c.action.removes:
            continue
        actual = snapshot.resources[c.address]
        if actual.protected:
            diags.add(c.file or "", 0, 0, "PLAN002",
                      f"{c.address} is protected (x-gitops.protect: true) and cannot be deleted or archived")
        if c.address.kind is Kind.MODEL:
            users = live_users(c.address, desired, snapshot, removed)
            if users:
                diags.add(c.file or "", 0, 0, "PLAN001",
                          f"{c.address} cannot be {c.action.value}d: {what_uses(users)}")


def _order(changes: list[Change]) -> list[Change]:
    by_addr = {c.address: c for c in changes}
    graph: Graph[Address] = Graph()
    for c in changes:
        graph.add(c.address, [d for d in c.depends_on if d in by_addr and by_addr[d].action is not Action.NOOP])
    # Changes to whatever may use an asset; versioned removals never wait on each other (no cycles).
    consumers = [c.address for c in changes if c.action is not Action.NOOP and c.address.kind in CONSUMERS
                 and not (c.action.removes and c.address.kind in VERSIONED)]
    for c in changes:
        if not c.action.removes:
            continue
        # Remove things only after whatever used them has moved on (reverse of creation order).
        if c.address.kind in VERSIONED:
            deps = consumers
        elif c.address.kind is Kind.ONLINE_DEPLOYMENT:
            endpoint = c.address.name.split("/", 1)[0]
            deps = [o.address for o in changes if o.address == Address(Kind.TRAFFIC, endpoint)]
        elif c.address.kind in (Kind.ONLINE_ENDPOINT, Kind.BATCH_ENDPOINT):
            deps = [o.address for o in changes if o.action.removes and o.address.name.startswith(c.address.name + "/")]
            deps += [o.address for o in changes if o.address == Address(Kind.TRAFFIC, c.address.name)]
        else:
            deps = []
        graph.add(c.address, [d for d in deps if d != c.address])
    for c in changes:  # record the final edges on each change: the JSON plan shows them
        c.depends_on = sorted(graph.dependencies(c.address))
    order = graph.order(key=lambda a: (by_addr[a].action.removes, a.sort_key()))
    return [by_addr[a] for a in order]


def build_plan(workspace: str, desired: DesiredState, snapshot: Snapshot, prune: bool, root: str,
               commit: str | None, dirty: bool, preview: PipelinePreview | None = None,
               promote_latest: bool = True) -> tuple[Plan, Diagnostics]:
    diags = Diagnostics()
    diags.extend(desired.diagnostics)
    changes = [_with_run(_change_for(d, snapshot.resources.get(a), snapshot), desired, preview)
               for a, d in desired.resources.items()]
    _after_runs(changes, snapshot, diags)
    held = promote(changes, snapshot, promote_latest)
    unknown_gate_metrics(desired, snapshot, diags)
    interrupted_rollouts(changes, snapshot)
    removals, kept = _removals(desired, snapshot, prune)
    changes += removals
    _guard(changes, desired, snapshot, diags)
    plan = Plan(workspace=workspace, workspace_id=snapshot.workspace_id, serial=snapshot.serial, root=root,
                commit=commit, dirty=dirty, changes=_order(changes), drift=_drift(snapshot, desired), unmanaged=kept,
                prune=prune, notes=_notes(changes) + held, conversions=_conversions(desired, snapshot),
                created_at=datetime.now(UTC).isoformat(timespec="seconds"), promote_latest=promote_latest,
                releases=releases(changes, snapshot))
    return plan, diags


BATCH_KEYS_NOTE = ("batch endpoints: Azure's REST invocation takes Microsoft Entra tokens only; a local workspace's "
                   "endpoint host takes the endpoint's keys instead (`mlops-gitops endpoint get-credentials NAME`), "
                   "a local extension")


def _conversions(desired: DesiredState, snapshot: Snapshot) -> list[dict[str, Any]]:
    """Each model of the tree that is an ONNX conversion: its source and tolerance, and its parity and latency
    where the version exists (measured when it was applied)."""
    out = []
    for addr, d in sorted(desired.resources.items(), key=lambda kv: kv[0].sort_key()):
        declared = (d.spec.get("x-gitops") or {}).get("convert") if addr.kind is Kind.MODEL else None
        if not declared:
            continue
        actual = snapshot.resources.get(addr)
        measured = (actual.provenance.get("conversion") or {}) if actual is not None else {}
        out.append({"model": str(addr), "source": (d.derived.get("refs") or {}).get("x-gitops.convert.from"),
                    "tolerance": declared.get("tolerance") or {}, "measured": measured})
    return out


def _notes(changes: list[Change]) -> list[str]:
    batch = any(c.address.kind is Kind.BATCH_ENDPOINT and c.action in (Action.CREATE, Action.UPDATE, Action.REPLACE)
                for c in changes)
    return [BATCH_KEYS_NOTE] if batch else []
