"""`mlops-gitops drift`: report what was changed outside Git; exit 2 when anything was."""

from __future__ import annotations

import argparse
import json

from mlops_gitops.apply.planning import plan_read_only
from mlops_gitops.commands import args
from mlops_gitops.commands.common import (
    EXIT_CHANGES,
    EXIT_OK,
    open_project,
    out,
    print_warnings,
    use_color,
    workspace_backend,
)
from mlops_gitops.plan.model import Plan
from mlops_gitops.plan.render.jsonout import plan_to_dict
from mlops_gitops.plan.render.markdown import inline
from mlops_gitops.plan.render.text import Painter, value
from mlops_gitops.textsafe import escape


def _text(plan: Plan, color: bool) -> str:
    paint = Painter(color)
    if not plan.drift:
        lines = [f"No drift: workspace '{plan.workspace}' matches what was last applied from the repository."]
    else:
        head = f"Workspace '{plan.workspace}' has {len(plan.drift)} change(s) made outside the repository:"
        lines = [paint.bold(head), ""]
        for d in plan.drift:
            lines.append(paint("!", escape(f"  {d.address} was {d.what} by {d.changed_by} at {d.changed_at}")))
            lines.extend(f"      ~ {escape(f.path)}: {value(f.before)} -> {value(f.after)}" for f in d.fields)
        lines += ["", "Run `mlops-gitops apply` to restore the repository's version, "
                      "or change the repository to match."]
    pending = [c for c in plan.actionable if not c.reason.startswith("changed outside")]
    if pending:
        lines.append(f"\n{len(pending)} change(s) in the repository are not applied yet (see `mlops-gitops plan`).")
    return "\n".join(lines)


def drift_body(plan: Plan, run_url: str) -> str:
    """Markdown for the drift issue: what changed outside Git, by whom and when."""
    lines = [f"mlops-gitops found changes made outside the repository in workspace `{plan.workspace}` "
             f"([drift check]({run_url})):", ""]
    for d in plan.drift:
        lines.append(f"- <code>{inline(d.address)}</code> was {inline(d.what)} by {inline(d.changed_by)} at "
                     f"{inline(d.changed_at)}")
        lines.extend(f"  - <code>{inline(f.path)}</code>: <code>{inline(value(f.before))}</code> → "
                     f"<code>{inline(value(f.after))}</code>" for f in d.fields)
    lines += ["", "Apply the repository to restore it, or change the repository to match. This issue closes "
                  "itself when the workspace matches again."]
    return "\n".join(lines)


def drift(path: str = ".", workspace: str | None = None, fmt: str = "text", color: bool | None = None) -> int:
    planned = plan_read_only(open_project(path), workspace, False)
    print_warnings(planned.warnings, len(planned.tree.documents))
    plan = planned.plan
    name = plan.workspace
    if fmt == "json":
        data = plan_to_dict(plan)
        out(json.dumps({"workspace": name, "drifted": bool(plan.drift), "resource_drift": data["resource_drift"]},
                       indent=2))
    else:
        out(_text(plan, use_color(color)))
    if plan.drift:
        with workspace_backend(open_project(path), workspace) as (_, backend):
            backend.emit("drift.detected", f"workspace:{name}", {
                "workspace": name, "resources": [{"address": str(d.address), "what": d.what, "by": d.changed_by,
                                                  "at": d.changed_at} for d in plan.drift]})
    return EXIT_CHANGES if plan.drift else EXIT_OK


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="?", default=".", help="repository (default: current folder)")
    args.workspace(p)
    args.color(p)
    args.fmt(p)
    args.examples(p, "mlops-gitops drift example-repo", "mlops-gitops drift example-repo -w staging --format json")
    p.set_defaults(run=drift)
