"""Markdown for pull-request comments: a summary line, then one collapsible section per resource."""

from __future__ import annotations

from importlib.resources import files

from jinja2 import Environment, StrictUndefined

from mlops_gitops.plan.model import Action, Plan
from mlops_gitops.plan.render.text import Painter, render_change

MARKER = "<!-- mlops-gitops plan -->"


def render_markdown(plan: Plan, show_noop: bool = False) -> str:
    template_text = files("mlops_gitops").joinpath("templates/plan.md.j2").read_text(encoding="utf-8")
    env = Environment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)
    paint = Painter(color=False)
    changes = [
        {"symbol": c.action.symbol, "address": str(c.address), "action": c.action.value, "reason": c.reason,
         "file": c.file, "body": "\n".join(line.strip() for line in render_change(c, paint)[1:])}
        for c in plan.changes if show_noop or c.action is not Action.NOOP
    ]
    drift = [{"address": str(d.address), "what": d.what, "by": d.changed_by,
              "body": "\n".join(f"  {f.path}: {f.before!r} -> {f.after!r}" for f in d.fields)} for d in plan.drift]
    counts = plan.counts()
    return env.from_string(template_text).render(
        marker=MARKER, plan=plan, summary=plan.summary_line(), changes=changes, drift=drift,
        deletes=counts["delete"] + counts["replace"], unmanaged=[str(a) for a in plan.unmanaged])
