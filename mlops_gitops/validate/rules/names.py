"""NAME001-NAME004: names and versions follow Azure ML's character and length rules.

Names reach the filesystem (run folders per step, output and input folders, logs per deployment), so
these rules are also what keeps a name from being a path: none of them admits '/', '\\' or '..'.
"""

from __future__ import annotations

import re

from mlops_gitops.addresses import Kind
from mlops_gitops.spec.resource import SpecResource
from mlops_gitops.validate.context import RuleContext

_ENDPOINT = (re.compile(r"[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?"), 3, 32,
             "3-32 characters: letters, digits and '-', starting with a letter, not ending with '-'")
_COMPONENT = (re.compile(r"[a-z][a-z0-9_]*"), 1, 255,
              "up to 255 characters: lowercase letters, digits and '_', starting with a letter")
_ASSET = (re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*"), 1, 255,
          "up to 255 characters: letters, digits, '_', '.' and '-', starting with a letter or digit")
_JOB = (re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]*"), 1, 255,
        "up to 255 characters: letters, digits, '_' and '-', starting with a letter or digit")
_VERSION = (re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*"), 1, 64,
            "up to 64 characters: letters, digits, '_', '.' and '-', starting with a letter or digit")

# Pipeline steps: azure-ai-ml's is_valid_node_name (a lowercase Python identifier).
_STEP = (re.compile(r"[a-z_][a-z0-9_]*"), 1, 255,
         "up to 255 characters: lowercase letters, digits and '_', starting with a letter or '_'")
# Inputs and outputs: azure-ai-ml's IOConstants.VALID_KEY_PATTERN; names equal ignoring case collide.
_PORT = (re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*"), 1, 255,
         "up to 255 characters: letters, digits and '_', starting with a letter or '_'")

RULES = {
    Kind.ONLINE_ENDPOINT: _ENDPOINT,
    Kind.ONLINE_DEPLOYMENT: _ENDPOINT,
    Kind.BATCH_ENDPOINT: _ENDPOINT,
    Kind.BATCH_DEPLOYMENT: _ENDPOINT,
    Kind.COMPONENT: _COMPONENT,
    Kind.MODEL: _ASSET,
    Kind.DATA: _ASSET,
    Kind.ENVIRONMENT: _ASSET,
    Kind.SCHEDULE: _ASSET,
    Kind.JOB: _JOB,
}


def _ok(value: str, rule: tuple[re.Pattern[str], int, int, str]) -> bool:
    pattern, low, high, _ = rule
    return low <= len(value) <= high and pattern.fullmatch(value) is not None


def _check_name(ctx: RuleContext, res: SpecResource, loc: tuple[str, ...], value: str, kind: Kind) -> None:
    rule = RULES[kind]
    if not _ok(value, rule):
        ctx.report(res, loc, "NAME001", f"invalid {kind.value} name '{value}': {rule[3]}")


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
            if not _ok(port, _PORT):
                ctx.report(res, where, "NAME004", f"invalid {direction[:-1]} name {port!r}: {_PORT[3]}")
            elif port.lower() in seen:
                ctx.report(res, where, "NAME004",
                           f"{direction[:-1]} names {seen[port.lower()]!r} and {port!r} are equal ignoring case")
            seen.setdefault(port.lower(), port)


def _check_steps(ctx: RuleContext, res: SpecResource) -> None:
    jobs = getattr(res.model, "jobs", None)
    if not isinstance(jobs, dict):
        return
    for step_name, step in jobs.items():
        if not _ok(step_name, _STEP):
            ctx.report(res, ("jobs", step_name), "NAME003", f"invalid pipeline step name {step_name!r}: {_STEP[3]}")
        _check_ports(ctx, res, step, ("jobs", step_name))
        inline = getattr(step, "component", None)
        if isinstance(inline, dict):
            _check_ports(ctx, res, inline, ("jobs", step_name, "component"))


def check(ctx: RuleContext) -> None:
    for res in ctx.tree.resources:
        m = res.model
        _check_ports(ctx, res, m, ())
        _check_steps(ctx, res)
        name = getattr(m, "name", None)
        if isinstance(name, str):
            _check_name(ctx, res, ("name",), name, res.kind)
        if res.kind in (Kind.ONLINE_DEPLOYMENT, Kind.BATCH_DEPLOYMENT):
            endpoint_kind = Kind.ONLINE_ENDPOINT if res.kind is Kind.ONLINE_DEPLOYMENT else Kind.BATCH_ENDPOINT
            _check_name(ctx, res, ("endpoint_name",), getattr(m, "endpoint_name", ""), endpoint_kind)
        if res.version is not None and not _ok(res.version, _VERSION):
            ctx.report(res, ("version",), "NAME002", f"invalid version '{res.version}': {_VERSION[3]}")
