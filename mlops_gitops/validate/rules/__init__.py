"""Semantic rules. Each rule family is a module with a `check(ctx)` function; codes are stable."""

from __future__ import annotations

from mlops_gitops.validate.context import RuleContext
from mlops_gitops.validate.rules import (
    identity,
    local,
    monitors,
    names,
    pipelines,
    references,
    rollouts,
    schedules,
    traffic,
)

RULES = (identity.check, names.check, references.check, traffic.check, pipelines.check, local.check,
         schedules.check, monitors.check, rollouts.check)


def run_all(ctx: RuleContext) -> None:
    for rule in RULES:
        rule(ctx)
