"""TRAFFIC001-003, MIRROR001-003: the endpoint's traffic split is well formed."""

from __future__ import annotations

from typing import Any

from mlops_gitops.addresses import Kind
from mlops_gitops.spec.resource import SpecResource
from mlops_gitops.validate.context import RuleContext


def _check_endpoint(ctx: RuleContext, res: SpecResource) -> None:
    m: Any = res.model
    known = ctx.online_deployments.get(res.name, set())
    traffic: dict[str, int] = m.traffic or {}
    for dep, weight in traffic.items():
        if dep not in known:
            hint = f" (deployments: {', '.join(sorted(known))})" if known else " (it has no deployments)"
            ctx.report(res, ("traffic", dep), "TRAFFIC001",
                       f"traffic names deployment '{dep}' that does not exist for endpoint '{res.name}'{hint}")
        if not 0 <= weight <= 100:
            ctx.report(res, ("traffic", dep), "TRAFFIC003", f"traffic for '{dep}' must be 0-100, not {weight}")
    total = sum(traffic.values())
    if traffic and total not in (0, 100):
        ctx.report(res, ("traffic",), "TRAFFIC002",
                   f"traffic of endpoint '{res.name}' sums to {total}; it must sum to 100 (or 0)")
    mirror: dict[str, int] = m.mirror_traffic or {}
    if len(mirror) > 1:
        ctx.report(res, ("mirror_traffic",), "MIRROR001", "mirror_traffic may name only one deployment")
    for dep, weight in mirror.items():
        if dep not in known:
            ctx.report(res, ("mirror_traffic", dep), "MIRROR003",
                       f"mirror_traffic names deployment '{dep}' that does not exist for endpoint '{res.name}'")
        if not 0 <= weight <= 50:
            ctx.report(res, ("mirror_traffic", dep), "MIRROR001",
                       f"mirror_traffic for '{dep}' must be 0-50, not {weight}")
        if weight > 0 and traffic.get(dep, 0) > 0:
            ctx.report(res, ("mirror_traffic", dep), "MIRROR002",
                       f"deployment '{dep}' takes live traffic ({traffic[dep]}%); it cannot also be mirrored to")
    if mirror and res.info.schema_name == "kubernetesOnlineEndpoint":
        ctx.report(res, ("mirror_traffic",), "MIRROR001", "mirror_traffic is not supported on Kubernetes endpoints")


def check(ctx: RuleContext) -> None:
    for res in ctx.tree.resources:
        if res.kind is Kind.ONLINE_ENDPOINT:
            _check_endpoint(ctx, res)
