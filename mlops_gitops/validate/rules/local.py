"""AUTH001: what the local workspace runs differently from Azure, said at validate and plan time."""

from __future__ import annotations

from mlops_gitops.addresses import Kind
from mlops_gitops.diagnostics import Severity
from mlops_gitops.validate.context import RuleContext


def check(ctx: RuleContext) -> None:
    for res in ctx.tree.resources:
        if res.kind is not Kind.ONLINE_ENDPOINT:
            continue
        mode = getattr(res.model, "auth_mode", "key")
        if mode != "key":
            ctx.report(res, ("auth_mode",), "AUTH001",
                       f"auth_mode {mode} needs Azure's identity platform, which the local workspace cannot check: "
                       "it serves this endpoint only with the endpoint's keys (mlops-gitops endpoint "
                       "get-credentials)", Severity.WARNING)
