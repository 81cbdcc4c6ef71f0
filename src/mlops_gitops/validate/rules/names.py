"""NAME001/NAME002: names and versions follow Azure ML's character and length rules."""

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


def check(ctx: RuleContext) -> None:
    for res in ctx.tree.resources:
        m = res.model
        name = getattr(m, "name", None)
        if isinstance(name, str):
            _check_name(ctx, res, ("name",), name, res.kind)
        if res.kind in (Kind.ONLINE_DEPLOYMENT, Kind.BATCH_DEPLOYMENT):
            endpoint_kind = Kind.ONLINE_ENDPOINT if res.kind is Kind.ONLINE_DEPLOYMENT else Kind.BATCH_ENDPOINT
            _check_name(ctx, res, ("endpoint_name",), getattr(m, "endpoint_name", ""), endpoint_kind)
        if res.version is not None and not _ok(res.version, _VERSION):
            ctx.report(res, ("version",), "NAME002", f"invalid version '{res.version}': {_VERSION[3]}")
