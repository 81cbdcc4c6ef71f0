"""Markdown for pull-request comments: a summary line, then one collapsible section per resource."""

from __future__ import annotations

import html
from collections.abc import Iterable
from importlib.resources import files

from jinja2 import Environment, StrictUndefined

from mlops_gitops.plan.model import Action, Plan
from mlops_gitops.plan.render.text import Painter, render_change, value
from mlops_gitops.textsafe import escape

MARKER = "<!-- mlops-gitops plan -->"


def render_markdown(plan: Plan, show_noop: bool = False) -> str:
    template_text = files("mlops_gitops").joinpath("templates/plan.md.j2").read_text(encoding="utf-8")
    # Values in HTML and inline code are escaped (one line, no markup, no backticks that end the span);
    # the fenced bodies are lines of the text renderer, whose values are escaped already.
    env = Environment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters["inline"] = inline
    paint = Painter(color=False)
    changes = [
        {"symbol": c.action.symbol, "address": str(c.address), "action": c.action.value, "reason": c.reason,
         "file": c.file, "body": _fenced(line.strip() for line in render_change(c, paint)[1:])}
        for c in plan.changes if show_noop or c.action is not Action.NOOP
    ]
    drift = [{"address": str(d.address), "what": d.what, "by": d.changed_by,
              "body": _fenced(f"  {escape(f.path)}: {value(f.before)} -> {value(f.after)}" for f in d.fields)}
             for d in plan.drift]
    counts = plan.counts()
    return env.from_string(template_text).render(
        marker=MARKER, plan=plan, summary=plan.summary_line(), changes=changes, drift=drift,
        deletes=counts["delete"] + counts["replace"], unmanaged=[str(a) for a in plan.unmanaged],
        notes=list(plan.notes), conversions=plan.conversions, releases=plan.releases)


def inline(text: object) -> str:
    """A value inside HTML or an inline code span of the comment: one line, markup and backticks escaped."""
    return html.escape(escape(text)).replace("`", "&#96;")


def _fenced(lines: Iterable[str]) -> str:
    """Lines for a ``` fence: a line of three backticks would close it early."""
    return "\n".join(line.replace("```", "`\u200b``") for line in lines)
