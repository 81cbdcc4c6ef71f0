"""Run records in the metadata store: runs, their steps, and the reuse cache (step key -> outputs).

Reads and writes only; the pipeline effect (pipelines.py) runs steps and reports here as they go.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update

from mlops_gitops.actor import now, whoami
from mlops_gitops.backends.local import db, rows
from mlops_gitops.backends.local.store import LocalStore, add_leases
from mlops_gitops.errors import NotFoundError
from mlops_gitops.hashing import canonical_json
from mlops_gitops.runtime.pipelines.runner import OutputRecord
from mlops_gitops.runtime.pipelines.steps import FileEntry, manifest_digest
from mlops_gitops.state import ActualResource, RunRecord, StepRecord

FINISHED = ("completed", "reused", "failed", "skipped", "cancelled", "interrupted")


def encode_outputs(outputs: dict[str, OutputRecord]) -> str:
    return canonical_json({name: {"type": type_, "sha256": manifest_digest(files),
                                  "files": [[f.rel, f.sha256, f.size] for f in files]}
                           for name, (type_, files) in outputs.items()})


def decode_outputs(text: str, path_of: Callable[[str], Path]) -> dict[str, OutputRecord]:
    data = rows.loads(text, "the outputs of a run")
    return {name: (str(rec["type"]), tuple(FileEntry(rel, sha, size, path_of(sha)) for rel, sha, size in rec["files"]))
            for name, rec in data.items()}


def _run(row: Any) -> RunRecord:
    return RunRecord(id=row.id, pipeline=row.pipeline, status=row.status, started_at=row.started_at,
                     finished_at=row.finished_at, submitted_by=row.submitted_by, source_file=row.source_file,
                     apply_id=row.apply_id, snapshot=rows.loads(row.snapshot, f"mg_runs.snapshot of run {row.id}"),
                     outputs=rows.loads(row.outputs, f"mg_runs.outputs of run {row.id}"), message=row.message or "",
                     owner=row.owner or "")


def _step(row: Any) -> StepRecord:
    where = f"step {row.run_id}/{row.step}"
    return StepRecord(run_id=row.run_id, step=row.step, status=row.status, key=row.key, component=row.component,
                      exit_code=row.exit_code, pid=row.pid, started_at=row.started_at, finished_at=row.finished_at,
                      inputs=rows.loads(row.inputs, f"inputs of {where}"),
                      outputs=rows.loads(row.outputs, f"outputs of {where}"),
                      metrics=rows.loads(row.metrics, f"metrics of {where}"),
                      environment=rows.loads(row.environment, f"environment of {where}"),
                      reused_from=row.reused_from or "", log=row.log or "", message=row.message or "")


def process_owner() -> str:
    """This process, as a run records it: host, pid and start time (a pid alone is reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def _start_time(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def owner_alive(owner: str) -> bool | None:
    """Whether the process that recorded `owner` still runs; None when it ran on another host."""
    host, _, rest = owner.partition(":")
    pid_text, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not started or _start_time(pid) == started


class RunRecords:
    def __init__(self, store: LocalStore) -> None:
        self.store = store

    # -- a run as it goes --------------------------------------------------------------------------

    def start(self, run_id: str, pipeline: str, source_file: str, apply_id: str | None, snapshot: dict[str, Any],
              steps: list[dict[str, Any]], leases: set[str] | frozenset[str] = frozenset()) -> None:
        """Record a run as running, with the stored files it reads (kept from garbage collection until it ends)."""
        with self.store.writing() as conn:
            conn.execute(insert(db.runs).values(
                id=run_id, pipeline=pipeline, status="running", started_at=now(), submitted_by=whoami(),
                pid=os.getpid(), owner=process_owner(), source_file=source_file, apply_id=apply_id,
                snapshot=canonical_json(snapshot), outputs="{}"))
            if steps:
                conn.execute(insert(db.run_steps), [{"run_id": run_id, "status": "queued", **s} for s in steps])
            add_leases(conn, run_id, set(leases))

    def step_event(self, run_id: str, step: str, status: str, **fields: Any) -> None:
        values: dict[str, Any] = {"status": status}
        for key in ("key", "pid", "exit_code", "message", "log", "reused_from"):
            if key in fields:
                values[key] = fields[key]
        if "outputs" in fields:
            values["outputs"] = encode_outputs(fields["outputs"])
        if "metrics" in fields:
            values["metrics"] = canonical_json(fields["metrics"])
        if "inputs" in fields:  # known only once a batch job has hashed what it read
            values["inputs"] = canonical_json(fields["inputs"])
        if status in ("preparing", "reused"):
            values["started_at"] = now()
        if status in FINISHED:
            values["finished_at"] = now()
        with self.store.writing() as conn:
            conn.execute(update(db.run_steps).where(db.run_steps.c.run_id == run_id)
                         .where(db.run_steps.c.step == step).values(**values))

    def finish(self, run_id: str, status: str, outputs: dict[str, OutputRecord], message: str) -> None:
        with self.store.writing() as conn:
            conn.execute(update(db.runs).where(db.runs.c.id == run_id).values(
                status=status, finished_at=now(), outputs=encode_outputs(outputs), message=message))
            conn.execute(delete(db.leases).where(db.leases.c.run_id == run_id))  # its outputs are recorded now

    def leases(self, run_id: str) -> set[str]:
        with self.store.reading() as conn:
            return {r.sha256 for r in conn.execute(select(db.leases.c.sha256).where(db.leases.c.run_id == run_id))}

    def cancel_requested(self, run_id: str) -> bool:
        with self.store.reading() as conn:
            return bool(conn.execute(select(db.runs.c.cancel_requested).where(db.runs.c.id == run_id)).scalar())

    def request_cancel(self, run_id: str) -> None:
        with self.store.writing() as conn:
            conn.execute(update(db.runs).where(db.runs.c.id == run_id).values(cancel_requested=True))

    # -- the reuse cache -------------------------------------------------------------------------

    def cached(self, key: str) -> tuple[dict[str, OutputRecord], dict[str, Any], str] | None:
        if not self.store.has_state():
            return None
        with self.store.reading() as conn:
            row = conn.execute(select(db.step_cache).where(db.step_cache.c.key == key)).first()
        if row is None:
            return None
        outputs = decode_outputs(row.outputs, self.store.artifact_path)
        if any(not f.source.is_file() for _, files in outputs.values() for f in files):
            return None  # collected as garbage since: run again
        return outputs, rows.loads(row.metrics, f"metrics of cache entry {key}"), f"{row.run_id}/{row.step}"

    def save_cache(self, key: str, run_id: str, step: str, outputs: dict[str, OutputRecord],
                   metrics: dict[str, Any]) -> None:
        with self.store.writing() as conn:
            if conn.execute(select(db.step_cache.c.key).where(db.step_cache.c.key == key)).first() is None:
                conn.execute(insert(db.step_cache).values(key=key, run_id=run_id, step=step,
                                                          outputs=encode_outputs(outputs),
                                                          metrics=canonical_json(metrics), created_at=now()))

    # -- reading ---------------------------------------------------------------------------------

    def all(self, pipeline: str | None = None) -> list[RunRecord]:
        if not self.store.has_state():
            return []
        self.store.ensure()  # a workspace made before runs were recorded gets their tables
        q = select(db.runs).order_by(db.runs.c.started_at.desc())
        if pipeline:
            q = q.where(db.runs.c.pipeline == pipeline)
        with self.store.reading() as conn:
            return [_run(r) for r in conn.execute(q)]

    def get(self, run_id: str) -> RunRecord:
        """A run by its ID or a unique prefix of it."""
        if not self.store.has_state():
            raise NotFoundError(f"no run {run_id}: the workspace is empty")
        self.store.ensure()
        with self.store.reading() as conn:
            row = conn.execute(select(db.runs).where(db.runs.c.id == run_id)).first()
            if row is None:
                prefix = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                matches = conn.execute(select(db.runs).where(db.runs.c.id.like(f"{prefix}%", escape="\\"))
                                       .order_by(db.runs.c.started_at.desc())).fetchall()
                if len(matches) > 1:
                    shown = ", ".join(m.id for m in matches[:10]) + (", …" if len(matches) > 10 else "")
                    raise NotFoundError(f"run ID prefix '{run_id}' is ambiguous: {len(matches)} runs start with "
                                        f"it ({shown}); give more of the ID")
                if matches:
                    row = matches[0]
        if row is None:
            raise NotFoundError(f"no run {run_id} in this workspace (see `mlops-gitops job list`)")
        return _run(row)

    def steps(self, run_id: str) -> list[StepRecord]:
        with self.store.reading() as conn:
            return [_step(r) for r in conn.execute(
                select(db.run_steps).where(db.run_steps.c.run_id == run_id)
                .order_by(db.run_steps.c.started_at.is_(None), db.run_steps.c.started_at, db.run_steps.c.step))]

    def training_data(self, model: ActualResource) -> tuple[str, str]:
        """(NAME:VERSION of the data asset, run ID): what the run that produced `model` read, found through
        lineage; LookupError saying why when there is none."""
        run_id = model.provenance.get("run.id")
        if not run_id:
            raise LookupError(f"{model.address} was not produced by a run of this workspace")
        for step in self.steps(str(run_id)):
            for inp in step.inputs.values():
                origin = str(inp.get("data") or "")
                if origin.startswith("data:"):
                    return origin[len("data:"):], str(run_id)
        raise LookupError(f"run {run_id}, which produced {model.address}, read no data asset")

    def last_success(self, pipeline: str, step: str) -> StepRecord | None:
        """The step's latest completed or reused record in a run of this pipeline."""
        if not self.store.has_state():
            return None
        with self.store.reading() as conn:
            row = conn.execute(
                select(db.run_steps).join(db.runs, db.runs.c.id == db.run_steps.c.run_id)
                .where(db.runs.c.pipeline == pipeline, db.run_steps.c.step == step,
                       db.run_steps.c.status.in_(("completed", "reused")))
                .order_by(db.run_steps.c.finished_at.desc()).limit(1)).first()
        return _step(row) if row is not None else None

    def metrics(self, run_id: str) -> dict[str, Any]:
        """Every step's metrics of a run, merged in step order."""
        merged: dict[str, Any] = {}
        for step in sorted(self.steps(run_id), key=lambda s: s.step):
            merged.update(step.metrics)
        return merged

    def metrics_at(self, commit: str, pipeline: str | None = None) -> tuple[dict[str, Any], list[str]]:
        """Metrics of the latest completed run of each pipeline at `commit` (runs of a clean tree first):
        {"<pipeline>.<step>.<metric>": value}, and the run IDs they came from."""
        chosen: dict[str, tuple[bool, RunRecord]] = {}
        for run in sorted(self.all(pipeline), key=lambda r: r.finished_at or ""):
            if run.status != "completed" or run.snapshot.get("git.commit") != commit:
                continue
            clean = not run.snapshot.get("git.diff")
            if run.pipeline not in chosen or clean or not chosen[run.pipeline][0]:
                chosen[run.pipeline] = (clean, run)
        out: dict[str, Any] = {}
        for name, (_, run) in sorted(chosen.items()):
            for step in self.steps(run.id):
                for key, value in step.metrics.items():
                    out[f"{name}.{step.step}.{key}"] = value
        return out, [run.id for _, run in chosen.values()]

    # -- runs whose process is gone ------------------------------------------------------------------

    def reap(self) -> int:
        """Mark runs recorded as running whose process is gone as interrupted (their steps too)."""
        if not self.store.has_state():
            return 0
        with self.store.reading() as conn:
            running = conn.execute(select(db.runs.c.id, db.runs.c.owner, db.runs.c.pid)
                                   .where(db.runs.c.status == "running")).all()
        # runs recorded before owners were: their pid, on this host
        dead = [r.id for r in running
                if owner_alive(r.owner or (f"{socket.gethostname()}:{r.pid}:" if r.pid else "")) is False]
        if not dead:
            return 0
        stamp = now()
        with self.store.writing() as conn:
            conn.execute(update(db.runs).where(db.runs.c.id.in_(dead), db.runs.c.status == "running").values(
                status="interrupted", finished_at=stamp,
                message="its process ended before the run finished (killed or crashed)"))
            conn.execute(update(db.run_steps).where(
                db.run_steps.c.run_id.in_(dead), db.run_steps.c.status.in_(("queued", "preparing", "running"))
            ).values(status="interrupted", finished_at=stamp))
            conn.execute(delete(db.leases).where(db.leases.c.run_id.in_(dead)))
        return len(dead)
