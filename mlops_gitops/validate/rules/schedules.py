"""SCHED001: a schedule's trigger that cannot fire — a malformed cron expression, one that never fires, an unknown
time zone, a start or end time that is not a time (or an end before the start)."""

from __future__ import annotations

from mlops_gitops.addresses import Kind
from mlops_gitops.triggers import Trigger, TriggerError
from mlops_gitops.validate.context import RuleContext


def check(ctx: RuleContext) -> None:
    for res in ctx.tree.resources:
        if res.kind is not Kind.SCHEDULE:
            continue
        trigger = getattr(res.model, "trigger")  # noqa: B009 - a Schedule, by its kind
        try:
            Trigger.parse(trigger.model_dump(exclude_none=True))
        except TriggerError as exc:
            ctx.report(res, ("trigger",), "SCHED001", f"this schedule never fires: {exc}")
