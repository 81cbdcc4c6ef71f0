"""Terminal rendering in the style Terraform users read every day."""

from __future__ import annotations

import json
from typing import Any

from mlops_gitops.plan.model import Action, Change, FieldChange, Plan
from mlops_gitops.textsafe import escape

COLORS = {"+": "32", "~": "33", "-": "31", "-/+": "35", "!": "33", ">": "36"}
VERB = {Action.CREATE: "will be created", Action.UPDATE: "will be updated in-place",
        Action.REPLACE: "must be replaced", Action.DELETE: "will be destroyed", Action.ARCHIVE: "will be archived",
        Action.RUN: "will run", Action.NOOP: "is up to date"}


class Painter:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, symbol: str, text: str) -> str:
        code = COLORS.get(symbol)
        return f"\x1b[{code}m{text}\x1b[0m" if self.color and code else text

    def bold(self, text: str) -> str:
        return f"\x1b[1m{text}\x1b[0m" if self.color else text


def value(v: Any) -> str:
    """A value as JSON on one line (JSON escapes C0 controls; `escape` the line separators it keeps)."""
    if v is None:
        return "null"
    return escape(json.dumps(v, ensure_ascii=False, sort_keys=True))


def _field_line(f: FieldChange, paint: Painter) -> str:
    path = escape(f.path)  # keys come from the tree too (tags, properties, environment variables)
    if f.before is None:
        return paint("+", f"      + {path} = {value(f.after)}")
    if f.after is None:
        return paint("-", f"      - {path} = {value(f.before)}")
    note = " # forces replacement" if f.forces_replace else ""
    return paint("~", f"      ~ {path}: {value(f.before)} -> {value(f.after)}{note}")


def render_change(c: Change, paint: Painter) -> list[str]:
    file = escape(c.file) if c.file else ""
    where = f" ({file}:{c.line})" if file and c.line else (f" ({file})" if file else "")
    symbol, address = c.action.symbol, escape(c.address)
    lines = [paint.bold(f"  # {address} {VERB[c.action]}") + f"{where}: {escape(c.reason)}"]
    lines.append(paint(symbol, f"  {symbol} {address}"))
    lines.extend(_field_line(f, paint) for f in c.fields)
    for s in c.steps:
        mark = ">" if s["action"] == "run" else "="
        lines.append(paint(mark, f"      {mark} step {escape(s['step'])}: {s['action']} ({escape(s['reason'])})"))
    return lines


LONG_PLAN_LINES = 60  # longer plans are summarised (one line per change) unless --show-all


def render_plan(plan: Plan, color: bool = False, show_noop: bool = False, show_all: bool = True) -> str:
    full = _render(plan, color, show_noop)
    lines = full.count("\n") + 1
    if show_all or lines <= LONG_PLAN_LINES:
        return full
    return _render(plan, color, show_noop, hidden=lines)


def _summary_change(c: Change, paint: Painter) -> list[str]:
    file = escape(c.file) if c.file else ""
    where = f"  ({file}:{c.line})" if file and c.line else (f"  ({file})" if file else "")
    symbol = c.action.symbol
    return [paint(symbol, f"  {symbol:<3} {escape(c.address)}") + f"{where} {escape(c.reason)}"]


def _render(plan: Plan, color: bool, show_noop: bool, hidden: int = 0) -> str:
    """The plan in full, or (hidden: the full plan's line count) one line per change."""
    paint = Painter(color)
    out: list[str] = []
    if plan.drift:
        out.append(paint.bold("Note: objects have changed outside the repository"))
        out.append("")
        for d in plan.drift:
            out.append(paint("!", f"  # {escape(d.address)} was {escape(d.what)} outside the repository "
                                  f"(by {escape(d.changed_by)} at {escape(d.changed_at)})"))
            out.extend(_field_line(f, paint) for f in d.fields)
        out.append("")
        out.append("Unless the repository is changed to match, applying will undo these changes.")
        out.append("")
    changes = [c for c in plan.changes if show_noop or c.action is not Action.NOOP]
    if changes:
        used = sorted({c.action for c in changes}, key=list(Action).index)
        out.append(f"mlops-gitops will perform the following actions on workspace '{escape(plan.workspace)}':")
        out.append("  " + "   ".join(paint(a.symbol, f"{a.symbol} {a.value}") for a in used if a is not Action.NOOP))
        out.append("")
        if hidden:
            out.append(f"  (a summary: the full plan has {hidden} lines; --show-all prints it, --out saves it)")
        for c in changes:
            out.extend(_summary_change(c, paint) if hidden else render_change(c, paint))
            if not hidden:
                out.append("")
        if hidden:
            out.append("")
    if plan.unmanaged:
        out.append("In the workspace but not in the repository (kept; use --prune to remove):")
        out.extend(f"  {escape(a)}" for a in plan.unmanaged)
        out.append("")
    out.extend(f"Note: {escape(note)}" for note in plan.notes)
    if plan.notes:
        out.append("")
    out.append(paint.bold(plan.summary_line()))
    return "\n".join(out)
