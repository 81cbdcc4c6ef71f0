"""`mlops-gitops batch invoke`: start a job of a batch endpoint, as `az ml batch-endpoint invoke` does."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops_gitops.commands import args
from mlops_gitops.commands.common import EXIT_ERROR, EXIT_OK, capability, err, open_project, out, workspace_backend
from mlops_gitops.commands.jobs import runs_of
from mlops_gitops.textsafe import escape


def batch_invoke(endpoint: str, inputs: list[str], deployment: str | None = None, output: str | None = None,
                 sets: list[str] | None = None, path: str = ".", workspace: str | None = None) -> int:
    project = open_project(path)
    with workspace_backend(project, workspace) as (name, backend):
        invoke = capability(backend, "invoke_batch", "run batch jobs", owner=runs_of(backend))
        out(f"Starting a job of batch endpoint {endpoint} in workspace '{name}'")
        result = invoke(endpoint, inputs, deployment, Path(output).resolve() if output else None, sets or [])
    o = result.outcome
    out("")
    if o is not None:
        out(escape(f"Job {result.run_id} {result.status}: {o.succeeded_items} of {o.items} file(s) scored, "
                   f"{o.failed_items} failed, {o.rows} row(s) written in {o.finished_batches} of {o.mini_batches} "
                   "mini-batch(es)" + (" (partial output kept)" if o.partial and o.finished_batches else "")))
    else:
        out(escape(f"Job {result.run_id} {result.status}"))
    if result.message and result.status != "completed":
        err(escape(result.message))
    if result.output_folder is not None:
        out(escape(f"  output score: {result.output_folder}"))
    for f in result.output_files:
        out(escape(f"  copied to {f}"))
    out(f"`mlops-gitops job show {result.run_id}` shows it; `job logs {result.run_id}` its log.")
    return EXIT_OK if result.status == "completed" else EXIT_ERROR


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = args.actions(p, "_action")
    args.examples(p, "mlops-gitops batch invoke cancer-batch --input samples/batch -C example-repo")
    a = sub.add_parser("invoke", help="run a job of a batch endpoint's default (or named) deployment on an input")
    a.add_argument("endpoint", metavar="ENDPOINT", help="the batch endpoint's name")
    a.add_argument("--input", dest="inputs", action="append", required=True, metavar="PATH_OR_DATA",
                   help="a file or folder, a URL, or a data asset (azureml:NAME:VERSION, azureml:NAME@latest); "
                        "for a pipeline deployment NAME=VALUE per input of its component (repeat)")
    a.add_argument("--deployment", "-d", metavar="NAME", help="this deployment, not the endpoint's default")
    a.add_argument("--output", "-o", metavar="DIR", help="also copy the job's output files into DIR")
    a.add_argument("--set", dest="sets", action="append", metavar="KEY=VALUE",
                   help="override a setting for this job: mini_batch_size, max_concurrency_per_instance, "
                        "instance_count, error_threshold, max_retries, timeout, output_action, output_file_name, "
                        "logging_level (repeat)")
    args.workspace(a)
    args.examples(a, "mlops-gitops batch invoke cancer-batch --input samples/batch -C example-repo",
                  "mlops-gitops batch invoke cancer-batch --input samples/batch --set mini_batch_size=1 "
                  "--output scores -C example-repo")
    a.set_defaults(run=batch_invoke)
