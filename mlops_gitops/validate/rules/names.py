"""NAME001-NAME004: names and versions follow Azure ML's character and length rules.

Names reach the filesystem (run folders per step, output and input folders, logs per deployment), so
these rules are also what keeps a name from being a path: none of them admits '/', '\\' or '..'.
"""

from __future__ import annotations

from mlops_gitops.addresses import Kind
from mlops_gitops.kinds import PORT_NAME, STEP_NAME, VERSION, traits
from mlops_gitops.spec.resource import SpecResource
from mlops_gitops.validate.context import RuleContext


def _check_name(ctx: RuleContext, res: SpecResource, loc: tuple[str, ...], value: str, kind: Kind,
                note: str = "") -> None:
    rule = traits(kind).name
    if not rule.accepts(value):
        ctx.report(res, loc, "NAME001", f"invalid {kind.value} name '{value}': {rule.description}{note}")


def _used_by_path(ctx: RuleContext) -> set[str]:
    """Component files that pipelines or deployments name by path: Azure loads those anonymously and
    ignores their `name` (its published uci-heart-train-pipeline example relies on it)."""
    return {rel for res in ctx.tree.resources for link in res.links if link.role == "component" and link.yaml_file
            and (rel := ctx.tree.linked_file(res, link.text)) is not None}


def _ports(owner: object) -> dict[str, object]:
    if isinstance(owner, dict):
        return {d: owner.get(d) for d in ("inputs", "outputs")}
    return {d: getattr(owner, d, None) for d in ("inputs", "outputs")}


def _check_ports(ctx: RuleContext, res: SpecResource, owner: object, loc: tuple[str | int, ...]) -> None:
    for direction, ports in _ports(owner).items():
        if not isinstance(ports, dict):
            continue
        seen: dict[str, str] = {}
        for port in ports:
            where = (*loc, direction, port)
            if not PORT_NAME.accepts(port):
                ctx.report(res, where, "NAME004", f"invalid {direction[:-1]} name {port!r}: {PORT_NAME.description}")
            elif port.lower() in seen:
                ctx.report(res, where, "NAME004",
                           f"{direction[:-1]} names {seen[port.lower()]!r} and {port!r} are equal ignoring case")
            seen.setdefault(port.lower(), port)


def _check_steps(ctx: RuleContext, res: SpecResource) -> None:
    jobs = getattr(res.model, "jobs", None)
    if not isinstance(jobs, dict):
        return
    for step_name, step in jobs.items():
        if not STEP_NAME.accepts(step_name):
            ctx.report(res, ("jobs", step_name), "NAME003",
                       f"invalid pipeline step name {step_name!r}: {STEP_NAME.description}")
        _check_ports(ctx, res, step, ("jobs", step_name))
        inline = getattr(step, "component", None)
        if isinstance(inline, dict):
            _check_ports(ctx, res, inline, ("jobs", step_name, "component"))


def check(ctx: RuleContext) -> None:
    anonymous = _used_by_path(ctx)
    for res in ctx.tree.resources:
        m = res.model
        _check_ports(ctx, res, m, ())
        _check_steps(ctx, res)
        name = getattr(m, "name", None)
        if isinstance(name, str) and not (res.kind is Kind.COMPONENT and res.file in anonymous):
            note = (" (Azure's rule for a registered component; one that a pipeline or deployment names by path "
                    "is anonymous and keeps any name)") if res.kind is Kind.COMPONENT else ""
            _check_name(ctx, res, ("name",), name, res.kind, note)
        if res.kind in (Kind.ONLINE_DEPLOYMENT, Kind.BATCH_DEPLOYMENT):
            endpoint_kind = Kind.ONLINE_ENDPOINT if res.kind is Kind.ONLINE_DEPLOYMENT else Kind.BATCH_ENDPOINT
            _check_name(ctx, res, ("endpoint_name",), getattr(m, "endpoint_name", ""), endpoint_kind)
        if res.version is not None and not VERSION.accepts(res.version):
            ctx.report(res, ("version",), "NAME002", f"invalid version '{res.version}': {VERSION.description}")
