"""Argument parsing and exit codes only: every command is a function in mlops_gitops.commands.

Exit codes: 0 success / no changes, 1 error, 2 changes present (plan --detailed-exitcode, drift),
3 an internal error (a bug: run with --debug for the traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn

from mlops_gitops import __version__
from mlops_gitops.errors import GitOpsError, SpecError
from mlops_gitops.textsafe import defuse_text


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # usage errors exit 1: 2 means "changes present"
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(1)


def _common(p: argparse.ArgumentParser, path: bool = True) -> None:
    if path:
        p.add_argument("-C", "--path", default=".", help="repository (or a folder in it); default: current folder")
    p.add_argument("-w", "--workspace", help="workspace name from mlops.yaml (default: default_workspace)")


def _color(p: argparse.ArgumentParser) -> None:
    p.add_argument("--color", dest="color", action="store_true", default=None, help="force colour")
    p.add_argument("--no-color", dest="color", action="store_false", help="no colour")


def _prune(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prune", dest="prune", action="store_true", default=None,
                   help="delete (archive, for versioned assets) what is no longer in the tree")
    p.add_argument("--no-prune", dest="prune", action="store_false", help="override prune: true in mlops.yaml")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="mlops-gitops", description="GitOps for the machine-learning lifecycle.")
    parser.add_argument("--version", action="version", version=f"mlops-gitops {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    p = sub.add_parser("validate", help="validate the tree or some of its files (exit 0 valid, 1 invalid)")
    p.add_argument("paths", nargs="*", default=["."], help="folders or files (default: current folder)")
    p.add_argument("--strict", action="store_true", help="unknown fields and other warnings are errors")
    p.add_argument("--format", choices=["text", "json", "github", "azure"], default="text",
                   help="github: workflow annotations; azure: Azure Pipelines logging commands")
    p.add_argument("-w", "--workspace", help="workspace to check versions and references against")
    p.add_argument("--offline", action="store_true", help="do not read the workspace")
    p.add_argument("--schema-only", action="store_true",
                   help="check files against the JSON Schemas alone (no tree, no references)")

    p = sub.add_parser("plan", help="show what apply would change")
    p.add_argument("path", nargs="?", default=".", help="repository (default: current folder)")
    _common(p, path=False)
    _prune(p)
    _color(p)
    p.add_argument("--out", dest="out_file", help="save the plan; `apply FILE` applies exactly it")
    p.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    p.add_argument("--detailed-exitcode", action="store_true", help="exit 2 when there are changes")
    p.add_argument("--show-noop", action="store_true", help="also list resources that are up to date")
    p.add_argument("--strict", action="store_true")

    p = sub.add_parser("apply", help="apply the repository (or a saved plan) to a workspace")
    p.add_argument("target", nargs="?", default=".", help="repository folder or saved plan file")
    _common(p, path=False)
    _prune(p)
    _color(p)
    p.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    p.add_argument("--lock-timeout", type=float, default=0.0, metavar="SECONDS",
                   help="wait this long for the workspace lock (default: fail at once)")
    p.add_argument("--parallelism", type=int, default=4, help="independent actions at once (default 4)")
    p.add_argument("--reason", default="", help="recorded with the lock")
    p.add_argument("--strict", action="store_true")

    p = sub.add_parser("drift", help="report changes made outside Git (exit 2 when there are any)")
    p.add_argument("path", nargs="?", default=".")
    _common(p, path=False)
    _color(p)
    p.add_argument("--format", choices=["text", "json"], default="text")

    model = sub.add_parser("model", help="models in the workspace").add_subparsers(dest="model_cmd", metavar="ACTION",
                                                                                  parser_class=Parser)
    model.required = True
    p = model.add_parser("list", help="list model versions")
    _common(p)
    p.add_argument("--name")
    p.add_argument("--include-archived", action="store_true")
    p.add_argument("--format", choices=["text", "json"], default="text")
    for action, text in (("show", "show one version (NAME[:VERSION])"), ("archive", "archive NAME:VERSION"),
                         ("restore", "restore an archived NAME:VERSION")):
        p = model.add_parser(action, help=text)
        p.add_argument("ref")
        _common(p)
    p = model.add_parser("download", help="download all files of NAME[:VERSION]")
    p.add_argument("ref")
    p.add_argument("--dir", default=".", help="download into DIR/NAME/VERSION")
    _common(p)

    p = sub.add_parser("search", help="resources by tag: --tag key=value (TagName=TagValue); repeat to AND")
    p.add_argument("--tag", action="append", required=True)
    p.add_argument("--kind")
    p.add_argument("--format", choices=["text", "json"], default="text")
    _common(p)

    p = sub.add_parser("history", help="who changed a resource, when and why (workspace log + git log)")
    p.add_argument("resource", help="address (model:NAME[:VERSION], online-endpoint:NAME, ...) or file path")
    p.add_argument("--format", choices=["text", "json"], default="text")
    _common(p)

    state = sub.add_parser("state", help="inspect the workspace state").add_subparsers(dest="state_cmd",
                                                                                      metavar="ACTION",
                                                                                      parser_class=Parser)
    state.required = True
    p = state.add_parser("show", help="summary, or one resource in full")
    p.add_argument("address", nargs="?")
    p.add_argument("--format", choices=["text", "json"], default="text")
    _common(p)

    p = sub.add_parser("force-unlock", help="remove a lock left behind (give its ID)")
    p.add_argument("lock_id")
    _common(p)

    endpoint = sub.add_parser("endpoint", help="endpoints in the workspace").add_subparsers(
        dest="endpoint_cmd", metavar="ACTION", parser_class=Parser)
    endpoint.required = True
    p = endpoint.add_parser("list", help="endpoints, deployments and traffic")
    p.add_argument("--format", choices=["text", "json"], default="text")
    _common(p)
    p = endpoint.add_parser("set-traffic", help="change traffic outside Git (plan then reports it as drift)")
    p.add_argument("endpoint")
    p.add_argument("traffic", nargs="+", metavar="DEPLOYMENT=PERCENT")
    _common(p)
    p = endpoint.add_parser("show", help="scoring URI, traffic, deployments and their state")
    p.add_argument("endpoint")
    _common(p)
    p = endpoint.add_parser("invoke", help="send a request file to the endpoint (or one deployment)")
    p.add_argument("endpoint")
    p.add_argument("--request-file", required=True)
    p.add_argument("--deployment", help="pin a deployment (the azureml-model-deployment header)")
    _common(p)
    p = endpoint.add_parser("logs", help="the host's and the deployments' logs")
    p.add_argument("endpoint")
    p.add_argument("--deployment")
    p.add_argument("--lines", type=int, default=50)
    _common(p)
    p = endpoint.add_parser("get-credentials", help="the endpoint's two keys (or the host's metrics key)")
    p.add_argument("endpoint", nargs="?")
    p.add_argument("--metrics", action="store_true", help="the workspace's key of the endpoint host's /metrics")
    _common(p)
    p = endpoint.add_parser("regenerate-keys", help="replace one of the endpoint's keys")
    p.add_argument("endpoint")
    p.add_argument("--key-type", choices=["primary", "secondary"], default="primary")
    _common(p)

    p = sub.add_parser("serve", help="start the endpoint host in the background (or --stop it)")
    p.add_argument("--stop", action="store_true")
    _common(p)

    p = sub.add_parser("lineage", help="upstream and downstream of a model, data asset, run or deployment")
    p.add_argument("resource", metavar="RESOURCE|RUN", help="e.g. model:churn:4, model:churn (latest), a run ID")
    p.add_argument("--format", choices=["text", "json", "mermaid", "dot"], default="text")
    p.add_argument("--depth", type=int, default=4, help="how many steps to follow each way (default 4)")
    _common(p)

    p = sub.add_parser("ci", help="in GitHub Actions: plan and comment on pull requests, apply on the default "
                                  "branch, check drift on schedules")
    p.add_argument("--command", dest="command_", choices=["validate", "plan", "apply", "drift"],
                   help="what to do (default: from the event)")
    p.add_argument("path", nargs="?", default=".", help="repository (default: current folder)")
    p.add_argument("-w", "--workspace")

    events = sub.add_parser("events", help="lifecycle events recorded in the workspace").add_subparsers(
        dest="events_cmd", metavar="ACTION", parser_class=Parser)
    events.required = True
    p = events.add_parser("list", help="recorded events, oldest first (CloudEvents 1.0 with --format json)")
    p.add_argument("--type", action="append", dest="types", metavar="PATTERN", help="e.g. model.* (repeatable)")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--format", choices=["text", "json"], default="text")
    _common(p)
    p = events.add_parser("tail", help="the latest events; --follow prints new ones as they come")
    p.add_argument("--type", action="append", dest="types", metavar="PATTERN")
    p.add_argument("-n", "--lines", type=int, default=10)
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("--format", choices=["text", "json"], default="text")
    _common(p)

    metrics = sub.add_parser("metrics", help="metrics of pipeline runs").add_subparsers(
        dest="metrics_cmd", metavar="ACTION", parser_class=Parser)
    metrics.required = True
    p = metrics.add_parser("diff", help="step metrics of the runs at two commits (like dvc metrics diff)")
    p.add_argument("rev_a", metavar="REV_A")
    p.add_argument("rev_b", metavar="REV_B", nargs="?", default="HEAD")
    p.add_argument("--pipeline", help="only this pipeline job")
    p.add_argument("--all", action="store_true", help="also the metrics that did not change")
    p.add_argument("--format", choices=["text", "json", "md"], default="text")
    _common(p)

    job = sub.add_parser("job", help="pipeline runs on the workspace").add_subparsers(
        dest="job_cmd", metavar="ACTION", parser_class=Parser)
    job.required = True
    p = job.add_parser("run", help="run a pipeline job of the tree (unchanged steps are reused)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--force-rerun", action="store_true", help="run every step, reusing nothing")
    p.add_argument("--parallelism", type=int, default=4, help="steps run at the same time (default 4)")
    _common(p)
    p = job.add_parser("list", help="runs, newest first")
    p.add_argument("--pipeline", help="only runs of this pipeline job")
    p.add_argument("--format", choices=["text", "json"], default="text")
    _common(p)
    p = job.add_parser("show", help="a run: commit, parameters, steps, inputs, outputs, metrics")
    p.add_argument("run_id", metavar="RUN")
    p.add_argument("--format", choices=["text", "json"], default="text")
    _common(p)
    p = job.add_parser("logs", help="the logs of a run's steps")
    p.add_argument("run_id", metavar="RUN")
    p.add_argument("--step")
    p.add_argument("--lines", type=int, default=50)
    _common(p)
    p = job.add_parser("cancel", help="stop a running run")
    p.add_argument("run_id", metavar="RUN")
    _common(p)

    p = sub.add_parser("package", help="build a deployment of the workspace as an OCI image (Docker Engine API)")
    p.add_argument("deployment", metavar="ENDPOINT/DEPLOYMENT")
    p.add_argument("--tag", "-t", help="image name:tag (default mlops-gitops/ENDPOINT-DEPLOYMENT:DIGEST)")
    p.add_argument("--base-image", help="base image in place of the environment's (must provide python3 with venv)")
    p.add_argument("--output", "-o", metavar="DIR", help="write the build context (Dockerfile and files) to DIR "
                                                         "instead of building; needs no engine")
    _common(p)
    return parser


def _dispatch(args: argparse.Namespace) -> int:
    # Import only the command that runs: start-up time matters for pre-commit hooks.
    c = args.command
    if c == "validate":
        from mlops_gitops.commands import validate

        return validate.validate(args.paths, args.strict, args.format, args.workspace, args.offline,
                                 args.schema_only)
    if c == "plan":
        from mlops_gitops.commands import plan

        return plan.plan(args.path, args.workspace, args.prune, args.out_file, args.format, args.detailed_exitcode,
                         args.show_noop, args.strict, args.color)
    if c == "apply":
        from mlops_gitops.commands import apply

        return apply.apply(args.target, args.workspace, args.auto_approve, args.prune, args.lock_timeout,
                           args.parallelism, args.strict, args.color, args.reason)
    if c == "drift":
        from mlops_gitops.commands import drift

        return drift.drift(args.path, args.workspace, args.format, args.color)
    if c == "model":
        from mlops_gitops.commands import models

        handlers: dict[str, Callable[[], int]] = {
            "list": lambda: models.model_list(args.path, args.workspace, args.name, args.include_archived, args.format),
            "show": lambda: models.model_show(args.ref, args.path, args.workspace),
            "download": lambda: models.model_download(args.ref, args.dir, args.path, args.workspace),
            "archive": lambda: models.model_set_status(args.ref, "archived", args.path, args.workspace),
            "restore": lambda: models.model_set_status(args.ref, "active", args.path, args.workspace),
        }
        return handlers[args.model_cmd]()
    if c == "search":
        from mlops_gitops.commands import models

        return models.search(args.tag, args.path, args.workspace, args.kind, args.format)
    if c == "history":
        from mlops_gitops.commands import history

        return history.history(args.resource, args.path, args.workspace, args.format)
    if c == "state":
        from mlops_gitops.commands import state

        return state.state_show(args.address, args.path, args.workspace, args.format)
    if c == "force-unlock":
        from mlops_gitops.commands import state

        return state.force_unlock(args.lock_id, args.path, args.workspace)
    if c == "endpoint":
        from mlops_gitops.commands import endpoint

        actions: dict[str, Callable[[], int]] = {
            "list": lambda: endpoint.endpoint_list(args.path, args.workspace, args.format),
            "set-traffic": lambda: endpoint.set_traffic(args.endpoint, args.traffic, args.path, args.workspace),
            "show": lambda: endpoint.endpoint_show(args.endpoint, args.path, args.workspace),
            "invoke": lambda: endpoint.invoke(args.endpoint, args.request_file, args.deployment, args.path,
                                              args.workspace),
            "logs": lambda: endpoint.logs(args.endpoint, args.deployment, args.lines, args.path, args.workspace),
            "get-credentials": lambda: endpoint.get_credentials(args.endpoint, args.path, args.workspace,
                                                                args.metrics),
            "regenerate-keys": lambda: endpoint.regenerate_keys(args.endpoint, args.key_type, args.path,
                                                                args.workspace),
        }
        return actions[args.endpoint_cmd]()
    if c in ("serve", "lineage", "metrics", "events", "ci"):
        return _dispatch_more(args)
    if c == "job":
        from mlops_gitops.commands import jobs

        job_actions: dict[str, Callable[[], int]] = {
            "run": lambda: jobs.job_run(args.file, args.path, args.workspace, args.force_rerun, args.parallelism),
            "list": lambda: jobs.job_list(args.path, args.workspace, args.pipeline, args.format),
            "show": lambda: jobs.job_show(args.run_id, args.path, args.workspace, args.format),
            "logs": lambda: jobs.job_logs(args.run_id, args.step, args.lines, args.path, args.workspace),
            "cancel": lambda: jobs.job_cancel(args.run_id, args.path, args.workspace),
        }
        return job_actions[args.job_cmd]()
    if c == "package":
        from mlops_gitops.commands import package

        return package.package(args.deployment, args.tag, args.path, args.workspace, args.base_image, args.output)
    raise AssertionError(c)


def _dispatch_more(args: argparse.Namespace) -> int:
    if args.command == "serve":
        from mlops_gitops.commands import serve

        return serve.serve(args.path, args.workspace, args.stop)
    if args.command == "ci":
        from mlops_gitops.commands import ci

        return ci.ci(args.path, args.workspace, args.command_)
    if args.command == "events":
        from mlops_gitops.commands import events

        if args.events_cmd == "list":
            return events.events_list(args.path, args.workspace, args.types, args.limit, args.format)
        return events.events_tail(args.path, args.workspace, args.types, args.lines, args.follow, args.format)
    if args.command == "metrics":
        from mlops_gitops.commands import metrics

        return metrics.metrics_diff(args.rev_a, args.rev_b, args.path, args.workspace, args.pipeline, args.format,
                                    args.all)
    from mlops_gitops.commands import lineage

    return lineage.lineage(args.resource, args.path, args.workspace, args.format, args.depth)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 1
    try:
        return _dispatch(args)
    except SpecError as exc:
        if exc.diagnostics:
            from mlops_gitops.validate.report import as_text

            print(as_text(exc.diagnostics, 0).rsplit("\n", 1)[0], file=sys.stderr)
        print(defuse_text(f"Error: {exc}"), file=sys.stderr)
        return exc.exit_code
    except GitOpsError as exc:
        if args.debug:
            traceback.print_exc()
        print(defuse_text(f"Error: {exc}"), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the interpreter's final flush
        return 1
    except Exception as exc:  # a bug: say so plainly, traceback only with --debug
        if args.debug:
            traceback.print_exc()
        else:
            print(defuse_text(f"Internal error ({type(exc).__name__}: {exc}). This is a bug in mlops-gitops; "
                              "rerun with --debug for the traceback and report it."), file=sys.stderr)
        return 3

