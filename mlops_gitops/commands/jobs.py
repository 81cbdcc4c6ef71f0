"""`mlops-gitops job run|list|show|logs|cancel`: runs of command and pipeline jobs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mlops_gitops.addresses import Kind
from mlops_gitops.backends.base import Backend, Runs
from mlops_gitops.commands import args
from mlops_gitops.commands.common import (
    EXIT_ERROR,
    EXIT_OK,
    err,
    open_project,
    out,
    print_warnings,
    workspace_backend,
)
from mlops_gitops.diagnostics import Severity
from mlops_gitops.errors import ConfigError, NotFoundError, SpecError, WorkspaceError
from mlops_gitops.plan.desired import build_desired
from mlops_gitops.plan.scope import job_scope, outside_scope_as_warnings
from mlops_gitops.spec.tree import load_tree
from mlops_gitops.textsafe import escape, shorten
from mlops_gitops.validate import validate_tree
from mlops_gitops.vcs.git import repo_info, uncommitted_diff


def runs_of(backend: Backend) -> Runs:
    runs = backend.runs
    if runs is None:
        raise WorkspaceError(f"the {backend.name} backend does not run jobs")
    return runs


def job_run(file: str, path: str = ".", workspace: str | None = None, force_rerun: bool = False,
            parallelism: int = 4) -> int:
    target = Path(file)
    target = (target if target.is_absolute() else Path.cwd() / target).resolve()
    if not target.is_file():
        raise ConfigError(f"{file}: no such job file")
    project = open_project(target if path == "." else path)  # the tree that holds the file
    try:
        rel = target.relative_to(project.root).as_posix()
    except ValueError:
        raise ConfigError(f"{file} is outside the tree at {project.root}") from None
    tree = load_tree(project.root)
    with workspace_backend(project, workspace) as (name, backend):
        snapshot = backend.read()
        diags = validate_tree(tree, snapshot.index())
        desired = build_desired(tree, snapshot)
        diags.extend(desired.diagnostics)
        found = [d for a, d in desired.resources.items() if a.kind is Kind.JOB and d.source_file == rel]
        if not found:
            own = [d for d in diags.sorted() if d.file == rel and d.severity is Severity.ERROR]
            if own:
                raise SpecError(f"{rel} has errors; nothing was run", own)
            raise ConfigError(f"{rel} is not a job of the tree (is it excluded in mlops.yaml?)")
        job = found[0]
        # Errors in files the job does not use (a deployment of a model no run has registered yet) are
        # warnings here: they block plan and apply, not this run.
        diags = outside_scope_as_warnings(diags, job_scope(tree, desired, job.address))
        if diags.has_errors():
            raise SpecError(f"{rel} or what it uses has errors; nothing was run",
                            [d for d in diags.sorted() if d.severity is Severity.ERROR])
        print_warnings(diags.warnings, len(tree.documents))
        if job.spec.get("type", "command") not in ("pipeline", "command"):
            raise WorkspaceError(f"{rel} is a {job.spec.get('type')} job; `job run` runs command and pipeline jobs")
        git = repo_info(project.root)
        snap = {**git.provenance(), "git.diff": uncommitted_diff(project.root, []) if git.dirty_files else ""}
        runs = runs_of(backend)
        out(f"Running pipeline {job.address.name} in workspace '{name}'")
        run_id, result = runs.run(job, desired.resources, snap, force_rerun, parallelism, log=out)
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


def job_list(path: str = ".", workspace: str | None = None, pipeline: str | None = None, fmt: str = "text") -> int:
    with _backend(path, workspace) as (_, backend):
        rows = runs_of(backend).all(pipeline)
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


def _summary(outputs: dict[str, Any]) -> dict[str, Any]:
    return {k: {"sha256": v["sha256"], "files": len(v["files"])} for k, v in outputs.items()}


def describe_run(runs: Runs, run_id: str) -> dict[str, Any]:
    row = runs.get(run_id)
    steps = [{"step": s.step, "status": s.status, "component": s.component, "exit_code": s.exit_code,
              "started_at": s.started_at, "finished_at": s.finished_at, "inputs": s.inputs,
              "outputs": _summary(s.outputs), "metrics": s.metrics, "environment": s.environment,
              "reused_from": s.reused_from or None, "key": s.key, "message": s.message or None}
             for s in runs.steps(row.id)]
    snapshot = row.snapshot
    return {"id": row.id, "pipeline": row.pipeline, "status": row.status, "started_at": row.started_at,
            "finished_at": row.finished_at, "submitted_by": row.submitted_by, "source_file": row.source_file,
            "apply_id": row.apply_id, "git": {k[4:]: v for k, v in snapshot.items() if k.startswith("git.")},
            "parameters": snapshot.get("parameters", {}), "code": snapshot.get("code", {}),
            "batch": snapshot.get("batch"), "settings": snapshot.get("settings"),
            "outputs": _summary(row.outputs), "steps": steps, "message": row.message or None}


def job_show(run_id: str, path: str = ".", workspace: str | None = None, fmt: str = "text") -> int:
    with _backend(path, workspace) as (_, backend):
        mask = backend.masker().tree
        info = describe_run(runs_of(backend), run_id)
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
        message = shorten(str(git.get("message") or ""), 70)
        out(escape(f"  commit {git['commit'][:12]}{dirty} — {message}"))
    if info["batch"]:
        out(escape(f"  batch endpoint {info['batch'].get('endpoint')}, deployment {info['batch'].get('deployment')}"))
    if info["settings"]:
        out(escape("  settings " + ", ".join(f"{k}={v}" for k, v in sorted(info["settings"].items()))))
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
        runs = runs_of(backend)
        row = runs.get(run_id)
        steps = runs.steps(row.id)
        chosen = [s for s in steps if step is None or s.step == step]
        if step is not None and not chosen:
            raise NotFoundError(f"run {row.id} has no step '{step}' ({', '.join(s.step for s in steps)})")
        logs = {s.step: runs.step_log(row.id, s.step) for s in chosen if s.status != "reused"}
    for s in chosen:
        out(escape(f"==> {s.step} ({s.status}) <=="))
        text = logs.get(s.step)
        if s.status == "reused":
            out(f"reused the outputs of {s.reused_from}")
        elif text is not None:
            out("\n".join(text.rstrip().splitlines()[-lines:]))
        else:
            out("(no log)")
    return EXIT_OK


def job_cancel(run_id: str, path: str = ".", workspace: str | None = None) -> int:
    with _backend(path, workspace) as (_, backend):
        runs = runs_of(backend)
        row = runs.get(run_id)
        if row.status != "running":
            out(f"Run {row.id} is already {row.status}.")
            return EXIT_OK
        stopped = runs.cancel(row.id)
    out(f"Cancelling run {row.id}" + (f": stopped {', '.join(stopped)}" if stopped else "") +
        "; steps not started yet will not run.")
    return EXIT_OK


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = args.actions(p, "_action")
    args.examples(p, "mlops-gitops job run pipelines/train.yml -C example-repo",
                  "mlops-gitops job list --pipeline train-cancer-classifier -C example-repo")
    a = sub.add_parser("run", help="run a command or pipeline job of the tree (unchanged steps are reused)")
    a.add_argument("file", metavar="FILE", help="the job's YAML file in the tree (commandJob or pipelineJob)")
    a.add_argument("--force-rerun", action="store_true", help="run every step, reusing nothing")
    a.add_argument("--parallelism", type=int, default=4, help="steps run at the same time (default 4)")
    args.workspace(a)
    args.examples(a, "mlops-gitops job run pipelines/train.yml -C example-repo",
                  "mlops-gitops job run pipelines/train.yml --force-rerun --parallelism 2 -C example-repo")
    a.set_defaults(run=job_run)
    a = sub.add_parser("list", help="runs, newest first")
    a.add_argument("--pipeline", metavar="NAME", help="only runs of this job (its name: in the YAML)")
    args.fmt(a)
    args.workspace(a)
    args.examples(a, "mlops-gitops job list -C example-repo",
                  "mlops-gitops job list --pipeline train-cancer-classifier --format json -C example-repo")
    a.set_defaults(run=job_list)
    run_help = "run ID, or a unique prefix of it (`job list` shows them)"
    run = "train-cancer-classifier-20261207-082640-3f9a"  # an ID as `job run` gives them: JOB-DATE-TIME-HEX
    a = sub.add_parser("show", help="a run: commit, parameters, steps, inputs, outputs, metrics")
    a.add_argument("run_id", metavar="RUN", help=run_help)
    args.fmt(a)
    args.workspace(a)
    args.examples(a, f"mlops-gitops job show {run} -C example-repo          # an ID from `job list`",
                  f"mlops-gitops job show {run[:-5]} --format json -C example-repo   # a unique prefix")
    a.set_defaults(run=job_show)
    a = sub.add_parser("logs", help="the logs of a run's steps")
    a.add_argument("run_id", metavar="RUN", help=run_help)
    a.add_argument("--step", help="only this step (a key under jobs: of the pipeline; default: every step)")
    a.add_argument("--lines", type=int, default=50, metavar="N", help="last N lines of each step's log (default 50)")
    args.workspace(a)
    args.examples(a, f"mlops-gitops job logs {run} -C example-repo",
                  f"mlops-gitops job logs {run} --step train --lines 200 -C example-repo")
    a.set_defaults(run=job_logs)
    a = sub.add_parser("cancel", help="stop a running run")
    a.add_argument("run_id", metavar="RUN", help=run_help)
    args.workspace(a)
    args.examples(a, f"mlops-gitops job cancel {run} -C example-repo")
    a.set_defaults(run=job_cancel)
