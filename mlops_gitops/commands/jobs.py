"""`mlops-gitops job run|list|show|logs|cancel`: pipeline runs on the local workspace."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from mlops_gitops.addresses import Kind
from mlops_gitops.backends.local import LocalBackend, db
from mlops_gitops.commands.common import EXIT_ERROR, EXIT_OK, err, open_project, out, workspace_backend
from mlops_gitops.errors import ConfigError, NotFoundError, SpecError, WorkspaceError
from mlops_gitops.fsutil import safe_join
from mlops_gitops.lineage.git import repo_info, uncommitted_diff
from mlops_gitops.plan.desired import build_desired
from mlops_gitops.spec.tree import load_tree
from mlops_gitops.textsafe import escape
from mlops_gitops.validate import validate_tree


def job_run(file: str, path: str = ".", workspace: str | None = None, force_rerun: bool = False,
            parallelism: int = 4) -> int:
    from mlops_gitops.backends.local.jobs import PipelineResolver, require_pipeline, run_pipeline
    from mlops_gitops.runtime.pipelines.steps import PipelineError

    project = open_project(path)
    target = Path(file)
    target = (target if target.is_absolute() else Path.cwd() / target).resolve()
    try:
        rel = target.relative_to(project.root).as_posix()
    except ValueError:
        raise ConfigError(f"{file} is outside the repository at {project.root}") from None
    tree = load_tree(project.root)
    with workspace_backend(project, workspace) as (name, backend):
        snapshot = backend.read()
        diags = validate_tree(tree, snapshot.index())
        if diags.has_errors():
            raise SpecError("the repository has errors; nothing was run", diags.sorted())
        desired = build_desired(tree, snapshot)
        found = [d for a, d in desired.resources.items() if a.kind is Kind.JOB and d.source_file == rel]
        if not found:
            raise ConfigError(f"{rel} is not a job of the tree (is it excluded in mlops.yaml?)")
        job = found[0]
        require_pipeline(job.spec, rel)
        try:
            pipeline = PipelineResolver(backend, desired.resources).resolve(
                job.address.name, job.spec, job.derived, job.artifacts, rel)
        except PipelineError as exc:
            raise WorkspaceError(f"{rel}: {exc}") from None
        git = repo_info(project.root)
        snap = {**git.provenance(), "git.diff": uncommitted_diff(project.root, []) if git.dirty_files else ""}
        with backend.lock("job run", f"run {job.address.name}"):
            out(f"Running pipeline {job.address.name} in workspace '{name}'")
            run_id, result = run_pipeline(backend, pipeline, snap, force_rerun, parallelism, log=out)
    out(f"\nRun {run_id} {result.status}: " + ", ".join(
        f"{n} {r.status}" for n, r in result.steps.items()))
    for n, r in result.steps.items():
        if r.status == "failed":
            err(f"Step {n} failed: {r.message}")
    if result.status != "completed":
        out(f"Rerun with `mlops-gitops job run {file}`: steps that succeeded are reused.")
    return EXIT_OK if result.status == "completed" else EXIT_ERROR


def _backend(path: str, workspace: str | None) -> Any:
    return workspace_backend(open_project(path), workspace)


def _run_row(backend: LocalBackend, run_id: str) -> Any:
    if not backend.has_state():
        raise NotFoundError(f"no run {run_id}: the workspace is empty")
    backend.ensure()  # a workspace made before runs were recorded gets their tables
    with backend.engine.connect() as conn:
        row = conn.execute(select(db.runs).where(db.runs.c.id == run_id)).first()
        if row is None:  # a unique prefix is enough
            rows = conn.execute(select(db.runs).where(db.runs.c.id.like(f"{run_id}%"))).fetchall()
            if len(rows) == 1:
                row = rows[0]
    if row is None:
        raise NotFoundError(f"no run {run_id} in this workspace (see `mlops-gitops job list`)")
    return row


def _steps(backend: LocalBackend, run_id: str) -> list[Any]:
    with backend.engine.connect() as conn:
        return list(conn.execute(select(db.run_steps).where(db.run_steps.c.run_id == run_id)
                                 .order_by(db.run_steps.c.started_at.is_(None), db.run_steps.c.started_at,
                                           db.run_steps.c.step)))


def job_list(path: str = ".", workspace: str | None = None, pipeline: str | None = None, fmt: str = "text") -> int:
    with _backend(path, workspace) as (_, backend):
        backend.ensure()
        backend.reap_runs()
        q = select(db.runs).order_by(db.runs.c.started_at.desc())
        if pipeline:
            q = q.where(db.runs.c.pipeline == pipeline)
        with backend.engine.connect() as conn:
            rows = conn.execute(q).fetchall()
    if fmt == "json":
        out(json.dumps([{"id": r.id, "pipeline": r.pipeline, "status": r.status, "started_at": r.started_at,
                         "finished_at": r.finished_at, "submitted_by": r.submitted_by} for r in rows], indent=2))
        return EXIT_OK
    if not rows:
        out("No runs.")
        return EXIT_OK
    width = max(len(r.id) for r in rows)
    for r in rows:
        out(escape(f"{r.id:<{width}}  {r.status:<10} {r.started_at}  {r.submitted_by}"))
    return EXIT_OK


def _load(text: str | None) -> Any:
    return db.loads(text, "a run record")


def describe_run(backend: LocalBackend, run_id: str) -> dict[str, Any]:
    row = _run_row(backend, run_id)
    steps = []
    for s in _steps(backend, row.id):
        outputs = {k: {"sha256": v["sha256"], "files": len(v["files"])} for k, v in _load(s.outputs).items()}
        steps.append({"step": s.step, "status": s.status, "component": s.component, "exit_code": s.exit_code,
                      "started_at": s.started_at, "finished_at": s.finished_at, "inputs": _load(s.inputs),
                      "outputs": outputs, "metrics": _load(s.metrics), "environment": _load(s.environment),
                      "reused_from": s.reused_from or None, "key": s.key, "message": s.message or None})
    snapshot = _load(row.snapshot)
    return {"id": row.id, "pipeline": row.pipeline, "status": row.status, "started_at": row.started_at,
            "finished_at": row.finished_at, "submitted_by": row.submitted_by, "source_file": row.source_file,
            "apply_id": row.apply_id, "git": {k[4:]: v for k, v in snapshot.items() if k.startswith("git.")},
            "parameters": snapshot.get("parameters", {}), "code": snapshot.get("code", {}),
            "outputs": {k: {"sha256": v["sha256"], "files": len(v["files"])} for k, v in _load(row.outputs).items()},
            "steps": steps, "message": row.message or None}


def job_show(run_id: str, path: str = ".", workspace: str | None = None, fmt: str = "text") -> int:
    with _backend(path, workspace) as (_, backend):
        backend.reap_runs()
        mask = backend.masker().tree
        info = describe_run(backend, run_id)
    info["parameters"] = mask(info["parameters"])  # literal inputs may be secrets, or URLs with credentials
    for s in info["steps"]:
        s["inputs"] = mask(s["inputs"])
    if fmt == "json":
        out(json.dumps(info, indent=2, default=str))
        return EXIT_OK
    git = info["git"]
    out(escape(f"Run {info['id']} ({info['pipeline']}): {info['status']}"))
    out(escape(f"  started {info['started_at']}, finished {info['finished_at'] or '-'}, by {info['submitted_by']}"))
    if git.get("commit"):
        dirty = " + uncommitted changes" if git.get("diff") else ""
        message = (str(git.get("message") or "").splitlines() or [""])[0][:70]
        out(escape(f"  commit {git['commit'][:12]}{dirty} — {message}"))
    for name, value in sorted(info["parameters"].items()):
        out(escape(f"  parameter {name} = {value}"))
    for s in info["steps"]:
        extra = f" (reused from {s['reused_from']})" if s["reused_from"] else ""
        code = f", exit code {s['exit_code']}" if s["exit_code"] is not None else ""
        out("\n" + escape(f"  step {s['step']}: {s['status']}{code}{extra}  [{s['component']}]"))
        for port, inp in s["inputs"].items():
            text = (f"{inp['data']} sha256:{inp['sha256'][:12]}" if "data" in inp else
                    inp.get("from") or repr(inp.get("value")))
            out(escape(f"    input  {port}: {text}"))
        for port, o in s["outputs"].items():
            out(f"    output {port}: sha256:{o['sha256'][:12]} ({o['files']} file(s))")
        for key, value in s["metrics"].items():
            out(escape(f"    metric {key}: {value}"))
        if s["message"] and s["status"] in ("failed", "skipped", "cancelled"):
            out("\n".join("    " + escape(line) for line in s["message"].splitlines()))
    return EXIT_OK


def job_logs(run_id: str, step: str | None = None, lines: int = 50, path: str = ".",
             workspace: str | None = None) -> int:
    with _backend(path, workspace) as (_, backend):
        row = _run_row(backend, run_id)
        steps = _steps(backend, row.id)
        root = backend.path / "runs" / row.id
    chosen = [s for s in steps if step is None or s.step == step]
    if step is not None and not chosen:
        raise NotFoundError(f"run {row.id} has no step '{step}' ({', '.join(s.step for s in steps)})")
    for s in chosen:
        out(escape(f"==> {s.step} ({s.status}) <=="))
        log = safe_join(root, s.step, "log.txt")
        if s.status == "reused":
            out(f"reused the outputs of {s.reused_from}")
        elif log.exists():
            text = log.read_text(encoding="utf-8", errors="replace").rstrip().splitlines()
            out("\n".join(text[-lines:]))
        else:
            out("(no log)")
    return EXIT_OK


def job_cancel(run_id: str, path: str = ".", workspace: str | None = None) -> int:
    with _backend(path, workspace) as (_, backend):
        row = _run_row(backend, run_id)
        if row.status != "running":
            out(f"Run {row.id} is already {row.status}.")
            return EXIT_OK
        with backend.writing() as conn:
            conn.execute(update(db.runs).where(db.runs.c.id == row.id).values(cancel_requested=True))
        stopped = []
        for s in _steps(backend, row.id):
            if s.status == "running" and s.pid:
                try:
                    os.killpg(s.pid, signal.SIGTERM)
                    stopped.append(s.step)
                except (ProcessLookupError, PermissionError):
                    pass
    out(f"Cancelling run {row.id}" + (f": stopped {', '.join(stopped)}" if stopped else "") +
        "; steps not started yet will not run.")
    return EXIT_OK
