"""`mlops-gitops apply [PLAN.json | PATH]`: lock, re-read, re-plan, execute, record provenance."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from mlops_gitops.apply.executor import ApplyResult, Outcome
from mlops_gitops.apply.session import ApplyListener, apply_project
from mlops_gitops.commands import args
from mlops_gitops.commands.common import (
    EXIT_ERROR,
    EXIT_OK,
    check_repository,
    err,
    open_project,
    out,
    print_warnings,
)
from mlops_gitops.commands.plan import show
from mlops_gitops.errors import ConfigError
from mlops_gitops.plan.model import Action
from mlops_gitops.plan.planfile import SavedPlan, load_plan

DONE_WORDS = {Action.RUN: "ran", Action.CREATE: "created", Action.UPDATE: "updated", Action.REPLACE: "replaced",
              Action.DELETE: "deleted", Action.ARCHIVE: "archived"}


def _saved_plan(target: str) -> SavedPlan | None:
    p = Path(target)
    if p.is_file() or target.endswith(".json"):
        return load_plan(p)
    return None


def _describe(o: Outcome) -> str:
    c = o.change
    if o.status == "done" and o.unchanged:
        return f"{c.address}: {o.message}"
    if o.status == "done" and o.message:
        return f"{o.message}: {DONE_WORDS[c.action]} (planned as {c.address})"
    if o.status == "done":
        detail = ""
        if c.desired is not None and c.desired.artifacts and not c.action.removes:
            size = sum(a.size for a in c.desired.artifacts)
            detail = f" ({len(c.desired.artifacts)} file(s), {size} B)"
        return f"{c.address}: {DONE_WORDS[c.action]}{detail}"
    return f"{c.address}: {o.status.upper()}{': ' + o.message if o.message else ''}"


def _confirm(input_fn: Callable[[str], str]) -> bool:
    if input_fn is input and not sys.stdin.isatty():
        raise ConfigError("apply needs confirmation: run it in a terminal, or pass --auto-approve")
    answer = input_fn("\nDo you want to perform these actions? Only 'yes' will be accepted: ")
    return answer.strip() == "yes"


def apply(target: str = ".", workspace: str | None = None, auto_approve: bool = False, prune: bool | None = None,
          lock_timeout: float = 0.0, parallelism: int = 4, strict: bool = False, color: bool | None = None,
          reason: str = "", input_fn: Callable[[str], str] = input, show_all: bool = False,
          promote: bool | None = None) -> int:
    saved = _saved_plan(target)
    project = open_project(saved.root if saved else target)
    if saved is None:
        check_repository(project, "apply")

    def confirm() -> bool:
        if not auto_approve and not _confirm(input_fn):
            out("\nApply cancelled.")
            return False
        out("")
        return True

    listener = ApplyListener(warnings=print_warnings, warn=lambda m: err(f"Warning: {m}"),
                             show=lambda plan: show(plan, "text", color, False, show_all), confirm=confirm,
                             done=lambda o: out(_describe(o)))
    if saved is not None:  # as it was planned
        promote = bool(saved.document.get("promote_latest", True))
    report = apply_project(project, workspace, saved, prune, strict, lock_timeout, parallelism, reason, listener,
                           promote)
    if report.host_started is not None:
        out(f"Started the endpoint host at {report.host_started.url} (it was not running).")
    if not report.confirmed:
        return EXIT_ERROR
    if report.result is None:
        out("\nApply complete! Nothing to do: the workspace already matches the repository.")
        return EXIT_OK
    return _summarise(report.result)


def _summarise(result: ApplyResult) -> int:
    n = result.counts()
    if result.ok:
        ran = f" Pipelines: {n['ran']} ran." if n["ran"] else ""
        out(f"\nApply complete! Resources: {n['added']} added, {n['changed']} changed, {n['destroyed']} destroyed."
            f"{ran}")
        return EXIT_OK
    failed, skipped = result.by_status("failed"), result.by_status("skipped")
    out(f"\nApply failed: {len(failed)} action(s) failed, {len(skipped)} skipped because a dependency failed; "
        f"{n['added']} added, {n['changed']} changed, {n['destroyed']} destroyed.")
    for o in failed:
        err(f"Error: {o.change.address}: {o.message}")
    return EXIT_ERROR


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", nargs="?", default=".",
                   help="repository folder (default: current folder) or a plan file saved by `plan --out`")
    args.workspace(p)
    args.prune(p)
    args.promote(p)
    args.color(p)
    p.add_argument("--auto-approve", action="store_true", help="do not ask for confirmation")
    p.add_argument("--show-all", action="store_true",
                   help="print every field of a long plan (over 60 lines are summarised, one line per change)")
    p.add_argument("--lock-timeout", type=float, default=0.0, metavar="SECONDS",
                   help="wait this long for the workspace lock (default: fail at once)")
    p.add_argument("--parallelism", type=int, default=4, help="independent actions at once (default 4)")
    p.add_argument("--reason", default="", help="why: recorded with the lock, shown to whoever waits for it")
    p.add_argument("--strict", action="store_true", help="unknown fields and other warnings are errors")
    args.examples(p, "mlops-gitops apply example-repo --auto-approve",
                  "mlops-gitops apply plan.json --reason 'release 1.2'   # a plan saved by `plan --out plan.json`")
    p.set_defaults(run=apply)
