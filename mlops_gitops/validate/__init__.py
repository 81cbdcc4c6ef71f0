"""Validate a tree: schema errors from loading plus semantic rules, as diagnostics."""

from __future__ import annotations

from collections.abc import Mapping

from mlops_gitops.addresses import Kind
from mlops_gitops.diagnostics import Diagnostics
from mlops_gitops.spec.tree import Tree
from mlops_gitops.validate.context import RuleContext
from mlops_gitops.validate.rules import run_all


def validate_tree(tree: Tree, existing: Mapping[tuple[Kind, str], tuple[str, ...]] | None = None,
                  offline: bool = False) -> Diagnostics:
    """All diagnostics for the tree: loading problems first, then every semantic rule. `offline`: no
    workspace was consulted, so a reference to an asset outside the tree is a warning, not an error."""
    ctx = RuleContext(tree, existing or {}, offline=offline)
    ctx.diagnostics.extend(tree.diagnostics)
    run_all(ctx)
    return ctx.diagnostics
