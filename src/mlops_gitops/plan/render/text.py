"""Terminal rendering in the style Terraform users read every day."""

from __future__ import annotations

import json
from typing import Any

from mlops_gitops.plan.model import Action, Change, FieldChange, Plan

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
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if v is None:
        return "null"
    return json.dumps(v, ensure_ascii=False, sort_keys=True)


def _field_line(f: FieldChange, paint: Painter) -> str:
    if f.before is None:
        return paint("+", f"      + {f.path} = {value(f.after)}")
    if f.after is None:
        return paint("-", f"      - {f.path} = {value(f.before)}")
    note = " # forces replacement" if f.forces_replace else ""
    return paint("~", f"      ~ {f.path}: {value(f.before)} -> {value(f.after)}{note}")


def render_change(c: Change, paint: Painter) -> list[str]:
    where = f" ({c.file}:{c.line})" if c.file and c.line else (f" ({c.file})" if c.file else "")
    symbol = c.action.symbol
    lines = [paint.bold(f"  # {c.address} {VERB[c.action]}") + f"{where}: {c.reason}"]
    lines.append(paint(symbol, f"  {symbol} {c.address}"))
    lines.extend(_field_line(f, paint) for f in c.fields)
    for s in c.steps:
        mark = ">" if s["action"] == "run" else "="
        lines.append(paint(mark, f"      {mark} step {s['step']}: {s['action']} ({s['reason']})"))
    return lines


def render_plan(plan: Plan, color: bool = False, show_noop: bool = False) -> str:
    paint = Painter(color)
    out: list[str] = []
    if plan.drift:
        out.append(paint.bold("Note: objects have changed outside the repository"))
        out.append("")
        for d in plan.drift:
            out.append(paint("!", f"  # {d.address} was {d.what} outside the repository "
                                  f"(by {d.changed_by} at {d.changed_at})"))
            out.extend(_field_line(f, paint) for f in d.fields)
        out.append("")
        out.append("Unless the repository is changed to match, applying will undo these changes.")
        out.append("")
    changes = [c for c in plan.changes if show_noop or c.action is not Action.NOOP]
    if changes:
        used = sorted({c.action for c in changes}, key=list(Action).index)
        out.append(f"mlops-gitops will perform the following actions on workspace '{plan.workspace}':")
        out.append("  " + "   ".join(paint(a.symbol, f"{a.symbol} {a.value}") for a in used if a is not Action.NOOP))
        out.append("")
        for c in changes:
            out.extend(render_change(c, paint))
            out.append("")
    if plan.unmanaged:
        out.append("In the workspace but not in the repository (kept; use --prune to remove):")
        out.extend(f"  {a}" for a in plan.unmanaged)
        out.append("")
    out.append(paint.bold(plan.summary_line()))
    return "\n".join(out)
