"""`analytics export DIR`: a consistent snapshot of what the workspace measured, as Parquet files that BI tools
(Power BI, Tableau) and DuckDB read directly. Every record comes from one read of the store (a repeatable-read
transaction on PostgreSQL, a WAL snapshot on SQLite); collected files are the ones complete at that moment.
The snapshot is written beside DIR and renamed into place, so a reader never sees half of one.

Tables (one file each; times are UTC timestamps):
- jobs.parquet: run_id, job, kind (pipeline | command | batch), status, started_at, finished_at, submitted_by,
  git_commit, schedule, endpoint, deployment, message
- job_metrics.parquet: run_id, job, step, metric, value (numbers only), step_status
- predictions.parquet: run_id, endpoint, deployment, file, row, line (the batch job's output rows as written)
- monitor_runs.parquet: run_id, monitor, status, started_at, finished_at, breached_signals, message
- monitor_results.parquet: run_id, monitor, started_at, signal, signal_type, feature, feature_type, metric,
  value, threshold, breached, error, reference, reference_sha256, reference_rows, production,
  production_sha256, production_rows
- collected/ENDPOINT/DEPLOYMENT/COLLECTION/YYYY/MM/DD/HH/*.parquet: what the endpoint host collected
- manifest.json: when, the workspace's serial, each table's rows
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from mlops_gitops.backends.local import db, rows
from mlops_gitops.backends.local.collected import Collected
from mlops_gitops.backends.local.runs import decode_outputs
from mlops_gitops.backends.local.store import LocalStore
from mlops_gitops.errors import WorkspaceError
from mlops_gitops.fsutil import ensure_dir

MANIFEST = "manifest.json"
FORMAT = "mlops-gitops analytics 1"
TABLES = ("jobs", "job_metrics", "predictions", "monitor_runs", "monitor_results")


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@contextmanager
def _snapshot_read(store: LocalStore) -> Iterator[Connection]:
    """One read transaction for every table: the records agree with each other."""
    with store.reading() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")  # before the transaction begins
        with conn.begin():
            yield conn


class Analytics:
    def __init__(self, store: LocalStore, collected: Collected) -> None:
        self.store = store
        self.collected = collected

    def records(self) -> tuple[dict[str, list[dict[str, Any]]], int, list[Path]]:
        """Every table's rows, the workspace's serial and the collected files, from one read."""
        tables: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
        self.store.ensure()
        with _snapshot_read(self.store) as conn:
            serial = int(conn.execute(select(db.serial.c.value)).scalar() or 0)
            runs = conn.execute(select(db.runs).order_by(db.runs.c.started_at)).all()
            steps = conn.execute(select(db.run_steps)).all()
            monitors = conn.execute(select(db.monitor_runs).order_by(db.monitor_runs.c.started_at)).all()
            files = [f.path for f in self.collected.files(None, None, None, None)]  # complete files, at this read
        names = {r.id: r.pipeline for r in runs}
        for r in runs:
            snap = rows.loads(r.snapshot, f"mg_runs.snapshot of run {r.id}")
            batch = snap.get("batch") if isinstance(snap.get("batch"), dict) else {}
            tables["jobs"].append({
                "run_id": r.id, "job": r.pipeline, "kind": "batch" if batch else str(snap.get("type") or "pipeline"),
                "status": r.status, "started_at": _time(r.started_at), "finished_at": _time(r.finished_at),
                "submitted_by": r.submitted_by, "git_commit": snap.get("git.commit"),
                "schedule": snap.get("schedule"), "endpoint": batch.get("endpoint"),
                "deployment": batch.get("deployment"), "message": r.message or None})
            if batch and r.status in ("completed", "failed", "cancelled"):
                tables["predictions"] += self._predictions(r, batch)
        for s in steps:
            for metric, value in rows.loads(s.metrics, f"metrics of {s.run_id}/{s.step}").items():
                if (number := _number(value)) is not None:
                    tables["job_metrics"].append({"run_id": s.run_id, "job": names.get(s.run_id), "step": s.step,
                                                  "metric": metric, "value": number, "step_status": s.status})
        for m in monitors:
            self._monitor(m, tables)
        return tables, serial, files

    def _predictions(self, run: Any, batch: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for _, (_, entries) in decode_outputs(run.outputs, self.store.artifact_path).items():
            for entry in entries:
                if not entry.rel.endswith((".csv", ".txt", ".jsonl")):
                    continue
                try:
                    text = entry.source.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    continue  # an output file not kept here, or not text: not a prediction row
                out += [{"run_id": run.id, "endpoint": batch.get("endpoint"), "deployment": batch.get("deployment"),
                         "file": entry.rel, "row": i, "line": line} for i, line in enumerate(text.splitlines())]
        return out

    @staticmethod
    def _monitor(m: Any, tables: dict[str, list[dict[str, Any]]]) -> None:
        signals = rows.loads(m.signals, f"signals of monitor run {m.id}")
        data = rows.loads(m.data, f"data of monitor run {m.id}")
        tables["monitor_runs"].append({
            "run_id": m.id, "monitor": m.schedule, "status": m.status, "started_at": _time(m.started_at),
            "finished_at": _time(m.finished_at), "breached_signals": sum(1 for s in signals if not s["passed"]),
            "message": m.message or None})
        for s in signals:
            d = data.get(s["signal"], {})
            base = {"run_id": m.id, "monitor": m.schedule, "started_at": _time(m.started_at), "signal": s["signal"],
                    "signal_type": s["type"], "reference": d.get("reference"),
                    "reference_sha256": d.get("reference_sha256"), "reference_rows": s["rows"]["reference"],
                    "production": d.get("production"), "production_sha256": d.get("production_sha256"),
                    "production_rows": s["rows"]["production"]}
            for f in s["features"]:
                metrics = f["metrics"] or ({"": None} if f["error"] else {})
                for metric, value in metrics.items():
                    tables["monitor_results"].append({
                        **base, "feature": f["feature"], "feature_type": f["kind"], "metric": metric or None,
                        "value": _number(value), "threshold": f["checked"].get(metric),
                        "breached": metric in f["breached"], "error": f["error"] or None})

    def export(self, target: Path) -> dict[str, Any]:
        """Write the snapshot to target (replacing an earlier snapshot there); returns its manifest."""
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise WorkspaceError("analytics export writes Parquet: install pyarrow "
                                 "(pip install 'mlops-gitops[monitoring]')") from None
        target = target.absolute()
        if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not (target / MANIFEST).is_file())):
            raise WorkspaceError(f"{target} exists and is not an analytics snapshot: give a new or empty folder")
        tables, serial, files = self.records()
        staging = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        ensure_dir(staging)
        try:
            counts = {}
            for name in TABLES:
                pq.write_table(pa.Table.from_pylist(tables[name], schema=SCHEMAS[name]()), staging / f"{name}.parquet")
                counts[name] = len(tables[name])
            for path in files:
                dest = staging / "collected" / path.relative_to(self.collected.root)
                ensure_dir(dest.parent)
                shutil.copyfile(path, dest)
            manifest = {"format": FORMAT, "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
                        "workspace_serial": serial, "tables": counts, "collected_files": len(files)}
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
            old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
            if target.exists():
                os.replace(target, old)  # two renames: a reader sees the old snapshot or the new one
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return manifest


def _schemas() -> dict[str, Any]:
    import pyarrow as pa

    ts, s, f, i, b = pa.timestamp("us", "UTC"), pa.string(), pa.float64(), pa.int64(), pa.bool_()

    def of(*cols: tuple[str, Any]) -> Any:
        return lambda: pa.schema(list(cols))

    return {
        "jobs": of(("run_id", s), ("job", s), ("kind", s), ("status", s), ("started_at", ts), ("finished_at", ts),
                   ("submitted_by", s), ("git_commit", s), ("schedule", s), ("endpoint", s), ("deployment", s),
                   ("message", s)),
        "job_metrics": of(("run_id", s), ("job", s), ("step", s), ("metric", s), ("value", f), ("step_status", s)),
        "predictions": of(("run_id", s), ("endpoint", s), ("deployment", s), ("file", s), ("row", i), ("line", s)),
        "monitor_runs": of(("run_id", s), ("monitor", s), ("status", s), ("started_at", ts), ("finished_at", ts),
                           ("breached_signals", i), ("message", s)),
        "monitor_results": of(("run_id", s), ("monitor", s), ("started_at", ts), ("signal", s), ("signal_type", s),
                              ("feature", s), ("feature_type", s), ("metric", s), ("value", f), ("threshold", f),
                              ("breached", b), ("error", s), ("reference", s), ("reference_sha256", s),
                              ("reference_rows", i), ("production", s), ("production_sha256", s),
                              ("production_rows", i)),
    }


class _Schemas(dict[str, Any]):
    def __missing__(self, key: str) -> Any:
        self.update(_schemas())
        return dict.__getitem__(self, key)


SCHEMAS: dict[str, Any] = _Schemas()  # built on first use: pyarrow is an extra
