"""Monitors of the local workspace (an effect): a schedule's `create_monitor` run on data assets.

Each signal compares its `production_data` with its `reference_data` (data assets: `azureml:NAME:VERSION` or
`@latest`; without one, the training data of the monitored deployment's model, through lineage), per feature
(`features`, or every shared column), with the metrics and thresholds of runtime/monitoring/signals.py. A run
is recorded with each signal's per-feature values and verdicts and the data it compared (assets and hashes);
a Markdown and an HTML report are written beside it; a breached signal emits
`monitor.signal_breached` (and `data_drift.detected` for a drift signal). Production data collected from a
deployment (data_collector) is read from the host's Parquet files in the signal's data_window.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from mlops_gitops.actor import now as stamp
from mlops_gitops.addresses import Address, Kind
from mlops_gitops.backends.local import db, notify, rows
from mlops_gitops.backends.local.collected import Collected
from mlops_gitops.backends.local.hooks import Hooks
from mlops_gitops.backends.local.runs import RunRecords
from mlops_gitops.backends.local.serving import materialise
from mlops_gitops.backends.local.store import LocalStore
from mlops_gitops.errors import NotFoundError, WorkspaceError
from mlops_gitops.fsutil import safe_join, write_private
from mlops_gitops.hashing import canonical_json
from mlops_gitops.runtime.monitoring import report
from mlops_gitops.runtime.monitoring.metrics import SignalError
from mlops_gitops.runtime.monitoring.signals import SignalResult, evaluate
from mlops_gitops.runtime.monitoring.table import Table
from mlops_gitops.spec.references import parse_asset_ref
from mlops_gitops.state import ActualResource, Snapshot


@dataclass
class MonitorRun:
    id: str
    schedule: str
    status: str  # passed | breached | failed
    signals: list[dict[str, Any]]
    data: dict[str, Any]
    message: str = ""
    report: Path | None = None


def _dataset(given: Any) -> str | None:
    """The data asset a monitoring dataset names (its input_data's path)."""
    if isinstance(given, list):
        given = given[0] if given else None
    if not isinstance(given, dict):
        return None
    data = given.get("input_data") or given.get("input_dataset") or {}
    return str(data.get("path")) if isinstance(data, dict) and data.get("path") else None


def _duration(text: Any, default: timedelta) -> timedelta:
    """An ISO 8601 duration as Azure's data_window writes it (P7D, PT6H, P1DT12H)."""
    if text in (None, ""):
        return default
    m = re.fullmatch(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", str(text))
    if m is None or not any(m.groups()):
        raise SignalError(f"data_window: {text!r} is not an ISO 8601 duration (P7D, PT6H)")
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in m.groups())
    return timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)


def data_window(given: Any, now: datetime) -> tuple[datetime, datetime]:
    """[since, until) of production data: data_window's lookback_window_size back from its offset (default:
    the last 7 days up to now)."""
    window = (given or {}).get("data_window") if isinstance(given, dict) else None
    window = window if isinstance(window, dict) else {}
    until = now - _duration(window.get("lookback_window_offset"), timedelta(0))
    return until - _duration(window.get("lookback_window_size"), timedelta(days=7)), until


def collected_source(text: str | None, definition: dict[str, Any], signal: dict[str, Any],
                     root: Path) -> tuple[str, str, str] | None:
    """(endpoint, deployment, collection) when a signal's production data is what the host collected."""
    if text is not None:
        ref = parse_asset_ref(text)
        if ref is None or not root.is_dir():
            return None
        for ep in (p for p in root.iterdir() if ref.name.startswith(p.name + "-")):
            for dep in (p for p in ep.iterdir() if ref.name.startswith(f"{ep.name}-{p.name}-")):
                collection = ref.name[len(ep.name) + len(dep.name) + 2:]
                if (dep / collection).is_dir():
                    return ep.name, dep.name, collection
        return None
    target = (definition.get("monitoring_target") or {}).get("endpoint_deployment_id")
    if not target:
        return None
    endpoint, _, deployment = str(target).removeprefix("azureml:").partition(":")
    if not deployment:
        raise SignalError(f"monitoring_target.endpoint_deployment_id {target!r}: write azureml:ENDPOINT:DEPLOYMENT")
    given = signal.get("production_data") or {}
    context = given.get("data_context") if isinstance(given, dict) else None
    default = "model_outputs" if signal.get("type") == "prediction_drift" else "model_inputs"
    return endpoint, deployment, str(context or default)


class Monitors:
    def __init__(self, store: LocalStore, hooks: Hooks) -> None:
        self.store = store
        self.hooks = hooks
        self.collected = Collected(store.path / "collected")

    def _asset(self, snap: Snapshot, text: str, where: str) -> tuple[ActualResource, list[Path]]:
        ref = parse_asset_ref(text)
        found = None
        if ref is not None:
            found = (snap.resources.get(Address(Kind.DATA, ref.name, ref.version)) if ref.version
                     else snap.latest(Kind.DATA, ref.name))
        if found is None or not found.files:
            raise SignalError(f"{where}: {text} is not a data asset with files in the workspace")
        folder = materialise([(f.rel, f.sha256) for f in found.files], self.store.artifact_path,
                             self.store.path / "monitors" / "data" / f"{found.address.name}-{found.address.version}")
        files = sorted(p for p in folder.rglob("*.csv"))
        if not files:
            raise SignalError(f"{where}: {found.address} holds no CSV file")
        return found, files

    def _production(self, snap: Snapshot, definition: dict[str, Any], signal: dict[str, Any],
                    now: datetime) -> tuple[Table, dict[str, Any]]:
        """A signal's production data: a data asset, or what the endpoint host collected from a deployment (its
        `<endpoint>-<deployment>-<collection>` data, or the monitoring_target's) in the signal's data_window."""
        given = signal.get("production_data")
        text = _dataset(given)
        target = collected_source(text, definition, signal, self.collected.root)
        if target is None:
            if text is None:
                raise SignalError("production_data: name a data asset (production_data.input_data.path), or set "
                                  "monitoring_target.endpoint_deployment_id to read what the deployment collected")
            production, asset_files = self._asset(snap, text, "production_data")
            return Table.read(asset_files, "production_data"), {
                "production": str(production.address),
                "production_sha256": (production.derived.get("paths") or {}).get("path", {}).get("sha256")}
        endpoint, deployment, collection = target
        since, until = data_window(given, now)
        try:
            window, sha256 = self.collected.window(endpoint, deployment, collection, since, until)
        except WorkspaceError as exc:
            raise SignalError(f"production_data: {exc} ({since:%Y-%m-%dT%H:%M} to "
                              f"{until:%Y-%m-%dT%H:%M} UTC)") from None
        return Table.from_arrow(window), {
            "production": f"collected:{endpoint}/{deployment}/{collection}", "production_rows": window.num_rows,
            "production_window": [since.isoformat(), until.isoformat()], "production_sha256": sha256}

    def _training_reference(self, snap: Snapshot, definition: dict[str, Any], signal: dict[str, Any],
                            monitored: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """A signal without reference_data compares with the training data of the monitored deployment's model:
        the data asset that the run which registered that model version read (lineage). Returns the asset's
        NAME:VERSION as a reference, and the deployment, model and run it was found through."""
        target = (definition.get("monitoring_target") or {}).get("endpoint_deployment_id")
        if not target or signal.get("type") == "prediction_drift":
            raise SignalError("reference_data: name a data asset (reference_data.input_data.path)"
                              + ("" if target else ", or set monitoring_target.endpoint_deployment_id to compare "
                                 "with the training data of the deployment's model"))
        if not monitored.get("model"):
            why = "it serves no registered model" if monitored else "no such deployment"
            raise SignalError(f"monitoring_target {target}: {why} in the workspace, so no training data to "
                              "compare with; name a data asset in reference_data.input_data.path")
        model = snap.resources.get(Address.parse(monitored["model"]))
        if model is None:
            raise SignalError(f"monitoring_target {target}: its model {monitored['model']} is not registered")
        try:
            data_ref, run_id = RunRecords(self.store).training_data(model)
        except LookupError as exc:
            raise SignalError(f"reference_data: {exc}; name a data asset in reference_data.input_data.path") \
                from None
        return f"azureml:{data_ref}", {"reference_found_through": {
            "deployment": monitored["deployment"], "model": str(model.address), "run": run_id}}

    @staticmethod
    def _target(snap: Snapshot, definition: dict[str, Any]) -> dict[str, Any]:
        """The monitored deployment and the model version it serves now (for lineage), when there is one."""
        target = (definition.get("monitoring_target") or {}).get("endpoint_deployment_id")
        endpoint, _, name = str(target or "").removeprefix("azureml:").partition(":")
        deployment = snap.resources.get(Address(Kind.ONLINE_DEPLOYMENT, f"{endpoint}/{name}")) if name else None
        if deployment is None:
            return {}
        model = str((deployment.derived.get("refs") or {}).get("model") or "")
        return {"deployment": str(deployment.address),
                "model": str(Address(Kind.MODEL, *model.split(":", 1))) if ":" in model else None}

    def run(self, schedule: ActualResource, fired_by: str = "monitor run") -> MonitorRun:
        definition = schedule.spec.get("create_monitor") or {}
        fired_at = datetime.now(UTC)
        run_id = f"{schedule.address.name}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        started = stamp()
        snap = self.store.read()
        results: list[SignalResult] = []
        data: dict[str, Any] = {}
        problems: list[str] = []
        monitored = self._target(snap, definition)
        for name, signal in (definition.get("monitoring_signals") or {}).items():
            try:
                production_table, production_facts = self._production(snap, definition, signal, fired_at)
                reference_text = _dataset(signal.get("reference_data"))
                lineage: dict[str, Any] = {}
                if reference_text is None:
                    reference_text, lineage = self._training_reference(snap, definition, signal, monitored)
                reference, ref_files = self._asset(snap, reference_text, "reference_data")
                data[name] = {"reference": str(reference.address),
                              "reference_sha256": (reference.derived.get("paths") or {}).get("path", {}).get("sha256"),
                              **({"target": monitored} if monitored else {}), **lineage, **production_facts}
                given = signal.get("reference_data")
                target = given.get("target_column_name") if isinstance(given, dict) else None
                result = evaluate(name, str(signal.get("type")), Table.read(ref_files, "reference_data"),
                                  production_table, signal.get("features"), signal.get("metric_thresholds"),
                                  shared_columns=bool(lineage), target=str(target) if target else None)
                results.append(result)
            except SignalError as exc:
                problems.append(f"signal {name}: {exc}")
        status = "failed" if problems else ("breached" if any(not r.passed for r in results) else "passed")
        signals = [r.to_dict() for r in results]
        run = MonitorRun(run_id, schedule.address.name, status, signals, data, "; ".join(problems))
        run.report = self._report(run)
        with self.store.writing() as conn:
            conn.execute(insert(db.monitor_runs).values(
                id=run_id, schedule=schedule.address.name, started_at=started, finished_at=stamp(), status=status,
                signals=canonical_json(signals), data=canonical_json(data), message=run.message))
        for r in results:
            if r.passed:
                continue
            facts = {"monitor": schedule.address.name, "run": run_id, "signal": r.name, "report": str(run.report),
                     "breaches": [{"feature": f.feature, "metric": m, "value": f.metrics[m], "threshold": f.checked[m]}
                                  for f in r.features for m in f.breached]}
            self.hooks.emit("monitor.signal_breached", str(schedule.address), facts)
            if r.type in ("data_drift", "prediction_drift"):
                self.hooks.emit("data_drift.detected", str(schedule.address), facts)
        breached = [r.name for r in results if not r.passed]
        if breached:
            notify.monitor_breached(self.hooks, definition, schedule.address.name, run_id, breached,
                                    run.report.read_text(encoding="utf-8"),
                                    run.report.with_suffix(".html").read_text(encoding="utf-8"))
        return run

    def _report(self, run: MonitorRun) -> Path:
        """report.md and report.html in the run's folder; returns the Markdown one."""
        recorded = {"id": run.id, "schedule": run.schedule, "status": run.status, "message": run.message,
                    "signals": run.signals, "data": run.data}
        folder = safe_join(self.store.path / "monitors", run.id)
        folder.mkdir(parents=True, exist_ok=True)
        write_private(folder / "report.html", report.html(recorded))
        write_private(folder / "report.md", report.markdown(recorded))
        return folder / "report.md"

    def get(self, run_id: str) -> dict[str, Any]:
        self.store.ensure()
        with self.store.reading() as conn:
            row = conn.execute(select(db.monitor_runs).where(db.monitor_runs.c.id == run_id)).first()
        if row is None:
            raise NotFoundError(f"no monitor run {run_id} (`mlops-gitops monitor list`)")
        return {**dict(row._mapping), "signals": rows.loads(row.signals, "signals"),
                "data": rows.loads(row.data, "data"),
                "report": str(self.store.path / "monitors" / run_id / "report.md"),
                "html_report": str(self.store.path / "monitors" / run_id / "report.html")}

    def recent(self, per_schedule: int = 5) -> list[dict[str, Any]]:
        """The latest runs of each schedule with their data windows (the lineage graph's monitor runs)."""
        if not self.store.has_state():
            return []
        self.store.ensure()
        order = func.row_number().over(partition_by=db.monitor_runs.c.schedule,
                                       order_by=db.monitor_runs.c.started_at.desc()).label("n")
        ranked = select(db.monitor_runs, order).subquery()
        with self.store.reading() as conn:
            found = conn.execute(select(ranked).where(ranked.c.n <= per_schedule)).all()
        return [{"id": r.id, "schedule": r.schedule, "status": r.status, "started_at": r.started_at,
                 "data": rows.loads(r.data, "data")} for r in found]

    def all(self, schedule: str | None = None) -> list[dict[str, Any]]:
        if not self.store.has_state():
            return []
        self.store.ensure()
        q = select(db.monitor_runs).order_by(db.monitor_runs.c.started_at.desc())
        if schedule:
            q = q.where(db.monitor_runs.c.schedule == schedule)
        with self.store.reading() as conn:
            return [{"id": r.id, "schedule": r.schedule, "status": r.status, "started_at": r.started_at,
                     "message": r.message} for r in conn.execute(q)]
