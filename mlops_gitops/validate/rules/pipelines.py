"""BIND001-BIND007, CMD001, STEP001: what the pipeline compiler finds in pipelines, and command placeholders."""

from __future__ import annotations

from typing import Any

from mlops_gitops.addresses import Kind
from mlops_gitops.diagnostics import Severity
from mlops_gitops.spec.compiler import Component, Problem, check_command, compile_pipeline
from mlops_gitops.spec.references import check_local_path, parse_asset_ref
from mlops_gitops.spec.resource import SpecResource
from mlops_gitops.spec.yamlload import load_file
from mlops_gitops.validate.context import RuleContext


def _finder(ctx: RuleContext, res: SpecResource) -> Any:
    def find(_step: str, step: dict[str, Any], within: Component | None) -> Component | None:
        """The component a step runs as the tree has it; None when it cannot be known here (REF rules say why).
        A step of a pipeline component names its component relative to that component's file."""
        comp = step.get("component")
        if isinstance(comp, dict):
            return Component(comp, "inline component", within.file if within else res.file)
        if not isinstance(comp, str):
            return None
        ref = parse_asset_ref(comp)
        if ref is not None:
            found = ctx.in_tree(Kind.COMPONENT, ref.name)
            if ref.version is not None:
                found = [r for r in found if r.version == ref.version]
            data = found[0].doc.data if found else None
            return Component(data, comp, found[0].file) if isinstance(data, dict) else None
        if within is not None and not within.file:
            return None  # a registered component's own paths: not known here
        base = (ctx.tree.root / within.file).parent if within is not None else res.base_dir
        check = check_local_path(base, comp, ctx.tree.root)
        if not check.exists or not check.resolved.is_file():
            return None
        rel = check.resolved.relative_to(ctx.tree.root).as_posix()
        doc = ctx.tree.documents.get(rel) or load_file(check.resolved, rel, ctx.diagnostics)
        return Component(doc.data, rel, rel) if doc is not None and isinstance(doc.data, dict) else None

    return find


def _report(ctx: RuleContext, res: SpecResource, problems: list[Problem]) -> None:
    for p in problems:
        ctx.report(res, p.loc, p.code, p.message)


def _ports(data: dict[str, Any], direction: str) -> set[str]:
    ports = data.get(direction)
    return {str(k) for k in ports} if isinstance(ports, dict) else set()


def check(ctx: RuleContext) -> None:
    for res in ctx.tree.resources:
        data = res.doc.data if isinstance(res.doc.data, dict) else {}
        if res.info.schema_name in ("pipelineJob", "pipelineComponent"):
            compiled = compile_pipeline(res.name, data, _finder(ctx, res))
            _report(ctx, res, compiled.problems)
            for step, step_type in compiled.not_run.items():
                ctx.report(res, ("jobs", step), "STEP001", f"step '{step}' is of type {step_type}: not run in the "
                                                           "local workspace (Azure ML runs it)", Severity.WARNING)
        elif res.info.schema_name in ("commandComponent", "commandJob") and isinstance(data.get("command"), str):
            problems: list[Problem] = []
            check_command(data["command"], _ports(data, "inputs"), _ports(data, "outputs"), ("command",), problems)
            _report(ctx, res, problems)
