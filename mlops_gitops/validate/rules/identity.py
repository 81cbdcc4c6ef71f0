"""DUP001: two files declare the same identity."""

from __future__ import annotations

from mlops_gitops.kinds import VERSIONED
from mlops_gitops.validate.context import RuleContext


def check(ctx: RuleContext) -> None:
    for (kind, name), resources in ctx.by_name.items():
        seen: dict[str | None, str] = {}
        for res in sorted(resources, key=lambda r: r.file):
            # Versioned assets: one file per (name, version); one auto-versioned file per name.
            key = res.version if kind in VERSIONED else None
            if key in seen:
                what = f"{kind.value} '{name}'" + (f" version {key}" if key else "")
                ctx.report(res, ("name",), "DUP001", f"duplicate {what}: also declared in {seen[key]}")
            else:
                seen[key] = res.file
