"""`mlops-gitops monitor run|list|show`: monitors (a schedule's create_monitor) run on the workspace."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mlops_gitops.commands import args
from mlops_gitops.commands.common import EXIT_ERROR, EXIT_OK, capability, err, open_project, out, workspace_backend
from mlops_gitops.errors import ConfigError
from mlops_gitops.textsafe import escape


def _monitors(backend: Any) -> Any:
    return capability(backend, "monitors", "run monitors")


def monitor_run(name: str, path: str = ".", workspace: str | None = None) -> int:
    with workspace_backend(open_project(path), workspace) as (_, backend):
        monitors = _monitors(backend)
        schedule = capability(backend, "schedules", "fire schedules").get(name)
        if schedule.spec.get("create_monitor") is None:
            raise ConfigError(f"schedule '{name}' creates a job, not a monitor (`mlops-gitops schedule trigger`)")
        run = monitors.run(schedule)
    out(escape(f"Monitor {name}: {run.status} (run {run.id})"))
    for s in run.signals:
        breached = [f"{f['feature']} {m}={f['metrics'][m]:.4g} (threshold {f['checked'][m]:g})"
                    for f in s["features"] for m in f["breached"]]
        out(escape(f"  {s['signal']} ({s['type']}): {'passed' if s['passed'] else 'breached'}"
                   + (": " + "; ".join(breached) if breached else "")))
    if run.message:
        err(escape(run.message))
    out(f"  report: {run.report}")
    return EXIT_ERROR if run.status == "failed" else EXIT_OK


def monitor_list(schedule: str | None = None, path: str = ".", workspace: str | None = None, fmt: str = "text") -> int:
    with workspace_backend(open_project(path), workspace) as (_, backend):
        runs = _monitors(backend).all(schedule)
    if fmt == "json":
        out(json.dumps(runs, indent=2))
    elif not runs:
        out("No monitor runs.")
    for r in runs if fmt != "json" else []:
        out(escape(f"{r['id']:<40} {r['status']:<9} {r['started_at'][:19]}"))
    return EXIT_OK


def monitor_show(run_id: str, path: str = ".", workspace: str | None = None, fmt: str = "text") -> int:
    with workspace_backend(open_project(path), workspace) as (_, backend):
        run = _monitors(backend).get(run_id)
    if fmt == "json":
        out(json.dumps(run, indent=2))
        return EXIT_OK
    report = Path(run["report"])
    out(report.read_text(encoding="utf-8") if report.is_file() else json.dumps(run, indent=2))
    return EXIT_OK


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = args.actions(p, "_action")
    args.examples(p, "mlops-gitops monitor run cancer-drift -C example-repo",
                  "mlops-gitops monitor list -C example-repo")
    a = sub.add_parser("run", help="run a schedule's monitor now: its signals, recorded, with a report")
    a.add_argument("name", metavar="SCHEDULE", help="the schedule whose create_monitor runs")
    args.workspace(a)
    args.examples(a, "mlops-gitops monitor run cancer-drift -C example-repo")
    a.set_defaults(run=monitor_run)
    a = sub.add_parser("list", help="monitor runs, newest first")
    a.add_argument("--schedule", metavar="NAME", help="only the runs of this schedule")
    args.fmt(a)
    args.workspace(a)
    args.examples(a, "mlops-gitops monitor list -C example-repo",
                  "mlops-gitops monitor list --schedule cancer-drift --format json -C example-repo")
    a.set_defaults(run=monitor_list)
    a = sub.add_parser("show", help="a monitor run: each signal's per-feature metrics and verdicts")
    a.add_argument("run_id", metavar="RUN", help="a run ID from `monitor list`")
    args.fmt(a)
    args.workspace(a)
    args.examples(a, "mlops-gitops monitor show cancer-drift-20261207-030000-ab12 -C example-repo")
    a.set_defaults(run=monitor_show)
