"""ROLL001: a progressive rollout whose steps do not end at a share the endpoint's traffic declares (the
deployment gaining traffic would stop short of, or beyond, where the tree puts it). ROLL002: a rollout health
condition on a figure the endpoint host does not record."""

from __future__ import annotations

from typing import Any

from mlops_gitops.addresses import Kind
from mlops_gitops.spec.kinds.common import HOST_FIGURES, host_figure, parse_condition
from mlops_gitops.validate.context import RuleContext


def check(ctx: RuleContext) -> None:
    for res in ctx.tree.resources:
        m: Any = res.model if res.kind is Kind.ONLINE_ENDPOINT else None
        rollout = m.x_gitops.rollout if m is not None and m.x_gitops is not None else None
        if rollout is None:
            continue
        shares = sorted({w for w in (m.traffic or {}).values() if w > 0})
        if shares and rollout.steps[-1] not in shares:
            ctx.report(res, ("x-gitops", "rollout", "steps", len(rollout.steps) - 1), "ROLL001",
                       f"rollout steps end at {rollout.steps[-1]}%, but the traffic of endpoint '{res.name}' gives "
                       f"no deployment that share (it declares {', '.join(f'{w}%' for w in shares)}); end the "
                       "steps at the share of the deployment gaining traffic")
        for i, text in enumerate(rollout.health.metrics):
            name = parse_condition(text)[0]
            if not host_figure(name):
                ctx.report(res, ("x-gitops", "rollout", "health", "metrics", i), "ROLL002",
                           f"rollout condition on '{name}': the endpoint host records {', '.join(HOST_FIGURES)} "
                           "per deployment (and each as NAME_over_old, its excess over the old deployments)")
