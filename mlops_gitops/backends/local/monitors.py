"""Monitors of the local workspace (an effect): a schedule's `create_monitor` run on data assets.

Each signal compares its `production_data` with its `reference_data` (data assets: `azureml:NAME:VERSION` or
`@latest`), per feature (`features`, or every shared column), with the metrics and thresholds of
runtime/monitoring/signals.py. A run is recorded with each signal's per-feature values and verdicts and the
data it compared (assets and hashes); a Markdown report is written beside it; a breached signal emits
`monitor.signal_breached` (and `data_drift.detected` for a drift signal). Production data collected from a
deployment is not recorded locally yet: a signal that needs it fails with that reason.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from mlops_gitops.actor import now as stamp
from mlops_gitops.addresses import Address, Kind
from mlops_gitops.backends.local import db, rows
from mlops_gitops.backends.local.hooks import Hooks
from mlops_gitops.backends.local.serving import materialise
from mlops_gitops.backends.local.store import LocalStore
from mlops_gitops.errors import NotFoundError
from mlops_gitops.fsutil import safe_join, write_private
from mlops_gitops.hashing import canonical_json
from mlops_gitops.runtime.monitoring.signals import SignalError, SignalResult, Table, evaluate
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


class Monitors:
    def __init__(self, store: LocalStore, hooks: Hooks) -> None:
        self.store = store
        self.hooks = hooks

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

    def run(self, schedule: ActualResource, fired_by: str = "monitor run") -> MonitorRun:
        definition = schedule.spec.get("create_monitor") or {}
        run_id = f"{schedule.address.name}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        started = stamp()
        snap = self.store.read()
        results: list[SignalResult] = []
        data: dict[str, Any] = {}
        problems: list[str] = []
        for name, signal in (definition.get("monitoring_signals") or {}).items():
            try:
                reference_text = _dataset(signal.get("reference_data"))
                production_text = _dataset(signal.get("production_data"))
                if production_text is None:
                    raise SignalError("production_data: what a deployment receives is not collected locally yet; "
                                      "name a data asset (production_data.input_data.path)")
                if reference_text is None:
                    raise SignalError("reference_data: name a data asset (reference_data.input_data.path)")
                reference, ref_files = self._asset(snap, reference_text, "reference_data")
                production, prod_files = self._asset(snap, production_text, "production_data")
                data[name] = {"reference": str(reference.address), "production": str(production.address),
                              "reference_sha256": (reference.derived.get("paths") or {}).get("path", {}).get("sha256"),
                              "production_sha256": (production.derived.get("paths") or {}).get("path", {})
                              .get("sha256")}
                features = signal.get("features")
                result = evaluate(name, str(signal.get("type")), Table.read(ref_files, "reference_data"),
                                  Table.read(prod_files, "production_data"),
                                  list(features) if isinstance(features, list) else None,
                                  signal.get("metric_thresholds"))
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
        return run

    def _report(self, run: MonitorRun) -> Path:
        lines = [f"## Monitor {run.schedule}: {run.status}", "", f"Run `{run.id}`.", ""]
        if run.message:
            lines += [f"**Failed:** {run.message}", ""]
        for s in run.signals:
            d = run.data.get(s["signal"], {})
            lines += [f"### {s['signal']} ({s['type']}): {'passed' if s['passed'] else 'breached'}", "",
                      f"Reference `{d.get('reference')}` ({s['rows']['reference']} rows) against production "
                      f"`{d.get('production')}` ({s['rows']['production']} rows).", "",
                      "| feature | type | metric | value | threshold | |", "|---|---|---|---|---|---|"]
            for f in s["features"]:
                if f["error"]:
                    lines.append(f"| {f['feature']} | {f['kind']} | — | — | — | {f['error']} |")
                for metric, limit in f["checked"].items():
                    mark = "breached" if metric in f["breached"] else "ok"
                    lines.append(f"| {f['feature']} | {f['kind']} | {metric} | {f['metrics'][metric]:.4g} | "
                                 f"{limit:g} | {mark} |")
            lines.append("")
        path = safe_join(self.store.path / "monitors", run.id) / "report.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, "\n".join(lines) + "\n")
        return path

    def get(self, run_id: str) -> dict[str, Any]:
        self.store.ensure()
        with self.store.reading() as conn:
            row = conn.execute(select(db.monitor_runs).where(db.monitor_runs.c.id == run_id)).first()
        if row is None:
            raise NotFoundError(f"no monitor run {run_id} (`mlops-gitops monitor list`)")
        return {**dict(row._mapping), "signals": rows.loads(row.signals, "signals"),
                "data": rows.loads(row.data, "data"),
                "report": str(self.store.path / "monitors" / run_id / "report.md")}

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
