"""`mlops-gitops plan`: desired vs actual, ordered; text, Markdown or JSON; optionally saved."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mlops_gitops.apply.planning import plan_read_only
from mlops_gitops.commands import args
from mlops_gitops.commands.common import (
    EXIT_CHANGES,
    EXIT_OK,
    check_repository,
    open_project,
    out,
    print_warnings,
    use_color,
)
from mlops_gitops.plan.model import Plan
from mlops_gitops.plan.planfile import save_plan
from mlops_gitops.plan.render.jsonout import plan_to_dict
from mlops_gitops.plan.render.text import render_plan


def show(plan: Plan, fmt: str, color: bool | None, show_noop: bool, show_all: bool = True) -> None:
    if fmt == "json":
        out(json.dumps(plan_to_dict(plan, show_noop), indent=2))
    elif fmt == "markdown":
        from mlops_gitops.plan.render.markdown import render_markdown  # jinja2 only when asked for

        out(render_markdown(plan, show_noop))
    else:
        out(render_plan(plan, use_color(color), show_noop, show_all))


def plan(path: str = ".", workspace: str | None = None, prune: bool | None = None, out_file: str | None = None,
         fmt: str = "text", detailed_exitcode: bool = False, show_noop: bool = False, strict: bool = False,
         color: bool | None = None, show_all: bool = False, promote: bool | None = None) -> int:
    project = open_project(path)
    check_repository(project, "plan")
    planned = plan_read_only(project, workspace, prune, strict, for_saving=bool(out_file), promote=promote)
    print_warnings(planned.warnings, len(planned.tree.documents))
    show(planned.plan, fmt, color, show_noop, show_all)
    if out_file:
        key = planned.snapshot.plan_key()
        assert key is not None  # for_saving gave the workspace its secret
        save_plan(planned.plan, Path(out_file), key)
        if fmt == "text":
            out(f"\nSaved the plan to {out_file}. Apply exactly this plan with: mlops-gitops apply {out_file}")
    if detailed_exitcode and planned.plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="?", default=".", help="repository (default: current folder)")
    args.workspace(p)
    args.prune(p)
    args.promote(p)
    args.color(p)
    p.add_argument("--out", dest="out_file", metavar="FILE",
                   help="save the plan to FILE; `apply FILE` applies exactly it")
    args.fmt(p, "text", "markdown", "json")
    p.add_argument("--detailed-exitcode", action="store_true", help="exit 2 when there are changes")
    p.add_argument("--show-noop", action="store_true", help="also list resources that are up to date")
    p.add_argument("--show-all", action="store_true",
                   help="print every field of a long plan (over 60 lines are summarised, one line per change)")
    p.add_argument("--strict", action="store_true", help="unknown fields and other warnings are errors")
    args.examples(p, "mlops-gitops plan example-repo",
                  "mlops-gitops plan example-repo -w staging --out plan.json --detailed-exitcode")
    p.set_defaults(run=plan)
