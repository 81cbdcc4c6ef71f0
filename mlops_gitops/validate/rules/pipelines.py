"""BIND001-BIND004, CMD001: pipeline bindings and command placeholders refer to things that exist."""

from __future__ import annotations

import re
from typing import Any

from mlops_gitops.addresses import Kind
from mlops_gitops.diagnostics import Diagnostics
from mlops_gitops.graph import CycleError, Graph
from mlops_gitops.spec.kinds.jobs import CommandComponent, PipelineStep
from mlops_gitops.spec.references import check_local_path, parse_asset_ref
from mlops_gitops.spec.resource import SpecResource
from mlops_gitops.spec.typed import validate_document
from mlops_gitops.spec.yamlload import Document, load_file
from mlops_gitops.validate.context import RuleContext

_EXPR = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")
_OPTIONAL = re.compile(r"\$\[\[.*?\]\]", re.S)


def _step_component(ctx: RuleContext, res: SpecResource, step: PipelineStep) -> Any:
    """The component a step runs (a model instance), or None when it cannot be known here."""
    comp = step.component
    if isinstance(comp, dict):
        d = Diagnostics()
        sub = Document(res.doc.path, res.doc.rel, comp, {})
        return validate_document(CommandComponent, sub, d, strict=False)
    if not isinstance(comp, str):
        return None
    ref = parse_asset_ref(comp)
    if ref is not None:
        found = ctx.in_tree(Kind.COMPONENT, ref.name)
        if ref.version is not None:
            found = [r for r in found if r.version == ref.version]
        return found[0].model if found else None
    check = check_local_path(res.base_dir, comp, ctx.tree.root)
    if not check.exists or not check.resolved.is_file():
        return None  # REF002/REF003 already say so
    rel = check.resolved.relative_to(ctx.tree.root).as_posix()
    in_tree = ctx.tree.resource_by_file(rel)
    if in_tree is not None:
        return in_tree.model
    doc = ctx.tree.documents.get(rel) or load_file(check.resolved, rel, ctx.diagnostics)
    if doc is None or not isinstance(doc.data, dict):
        return None
    return validate_document(CommandComponent, doc, ctx.diagnostics, strict=False)


def _outputs_of(step: PipelineStep, component: Any) -> set[str]:
    outs = set(step.outputs)
    if component is not None:
        outs |= set(getattr(component, "outputs", {}) or {})
    return outs


def _check_binding(ctx: RuleContext, res: SpecResource, loc: tuple[str | int, ...], expr: str,
                   steps: dict[str, PipelineStep], outputs: dict[str, set[str] | None], graph: Graph[str],
                   step_name: str) -> None:
    m: Any = res.model
    parts = expr.split(".")
    if parts[0] != "parent":
        return
    if len(parts) == 3 and parts[1] in ("inputs", "outputs"):
        ports = m.inputs if parts[1] == "inputs" else m.outputs
        if parts[2] not in ports:
            declared = ", ".join(sorted(ports)) or "none"
            ctx.report(res, loc, "BIND001",
                       f"'${{{{{expr}}}}}': the pipeline has no {parts[1][:-1]} '{parts[2]}' (declared: {declared})")
        return
    if len(parts) == 5 and parts[1] == "jobs" and parts[3] in ("outputs", "inputs"):
        target, port = parts[2], parts[4]
        if target not in steps:
            ctx.report(res, loc, "BIND001", f"'${{{{{expr}}}}}': there is no step '{target}'")
            return
        graph.add(step_name, [target])
        known = outputs.get(target)
        if parts[3] == "outputs" and known is not None and port not in known:
            declared = ", ".join(sorted(known)) or "none"
            ctx.report(res, loc, "BIND001",
                       f"'${{{{{expr}}}}}': step '{target}' has no output '{port}' (outputs: {declared})")
        return
    ctx.report(res, loc, "BIND001", f"'${{{{{expr}}}}}' is not a binding this pipeline can resolve")


def _check_pipeline(ctx: RuleContext, res: SpecResource) -> None:
    m: Any = res.model
    steps: dict[str, PipelineStep] = m.jobs
    components = {name: _step_component(ctx, res, step) for name, step in steps.items()}
    outputs = {name: _outputs_of(step, components[name]) if components[name] is not None or step.outputs
               else None for name, step in steps.items()}
    graph: Graph[str] = Graph()
    for name, step in steps.items():
        graph.add(name)
        comp = components[name]
        for direction in ("inputs", "outputs"):
            for port, value in getattr(step, direction).items():
                loc = ("jobs", name, direction, port)
                for expr in _EXPR.findall(str(getattr(value, "path", value) or "")):
                    _check_binding(ctx, res, loc, expr, steps, outputs, graph, name)
                declared = getattr(comp, direction, None) if comp is not None else None
                if declared is not None and port not in declared and step.component is not None:
                    ctx.report(res, loc, "BIND002",
                               f"step '{name}' binds {direction[:-1]} '{port}' that its component does not declare "
                               f"({', '.join(sorted(declared)) or 'none'})")
        if comp is not None and step.component is not None:
            for port, spec in (getattr(comp, "inputs", {}) or {}).items():
                if port not in step.inputs and not spec.optional and spec.default is None:
                    ctx.report(res, ("jobs", name), "BIND003",
                               f"step '{name}' does not bind required input '{port}' of its component")
    try:
        graph.order()
    except CycleError as exc:
        ctx.report(res, ("jobs",), "BIND004", f"steps depend on each other in a cycle: {exc}")


def _check_command(ctx: RuleContext, res: SpecResource, model: Any, loc: tuple[str | int, ...]) -> None:
    command = getattr(model, "command", None)
    if not isinstance(command, str):
        return
    for expr in _EXPR.findall(_OPTIONAL.sub(lambda mm: mm.group(0), command)):
        parts = expr.split(".")
        if len(parts) == 2 and parts[0] in ("inputs", "outputs"):
            ports = getattr(model, parts[0], {}) or {}
            if parts[1] not in ports:
                ctx.report(res, loc, "CMD001",
                           f"command uses '${{{{{expr}}}}}' but there is no {parts[0][:-1]} '{parts[1]}'")


def check(ctx: RuleContext) -> None:
    for res in ctx.tree.resources:
        if res.info.schema_name in ("pipelineJob", "pipelineComponent"):
            _check_pipeline(ctx, res)
            for name, step in res.model.jobs.items():  # type: ignore[attr-defined]
                if step.command:
                    _check_command(ctx, res, step, ("jobs", name, "command"))
        elif res.info.schema_name in ("commandComponent", "commandJob"):
            _check_command(ctx, res, res.model, ("command",))
