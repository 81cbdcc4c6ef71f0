"""REF001-REF006: references resolve, local paths exist and stay inside the repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_gitops.addresses import Kind
from mlops_gitops.diagnostics import Severity
from mlops_gitops.fsutil import scan
from mlops_gitops.spec.references import check_local_path, is_remote, local_path, parse_asset_ref, parse_job_output
from mlops_gitops.spec.resource import Link, SpecResource
from mlops_gitops.validate.context import RuleContext


def _curated(ctx: RuleContext, res: SpecResource, link: Link) -> bool:
    """A curated Azure ML environment: fine when its packages are known, else REF006; True when it is one."""
    from mlops_gitops.runtime.curated import CuratedError, curated_name, lookup

    if curated_name(link.text) is None:
        return False
    try:
        lookup(link.text)
    except CuratedError as exc:
        ctx.report(res, link.loc, "REF006", str(exc))
    return True


def _asset(ctx: RuleContext, res: SpecResource, link: Link) -> None:
    ref = parse_asset_ref(link.text)
    if link.target is Kind.ENVIRONMENT and (ref is None or not ctx.resolves(link.target, ref)) \
            and _curated(ctx, res, link):
        return
    if ref is None or link.target is None:
        return
    kind = link.target
    if kind is Kind.ONLINE_DEPLOYMENT:  # monitors: azureml:<endpoint>:<deployment>
        if ref.version is None:
            ctx.report(res, link.loc, "REF001",
                       f"'{link.text}' must name a deployment as azureml:<endpoint>:<deployment>")
            return
        name = f"{ref.name}/{ref.version}"
        if not ctx.in_tree(kind, name) and (kind, name) not in ctx.existing:
            ctx.report(res, link.loc, "REF001", f"deployment '{ref.version}' of endpoint '{ref.name}' not found")
        return
    if ctx.resolves(kind, ref):
        return
    versions = sorted({r.version or "(auto)" for r in ctx.in_tree(kind, ref.name)}
                      | set(ctx.existing.get((kind, ref.name), ())))
    hint = f" (versions known: {', '.join(versions)})" if versions else ""
    if ctx.offline:  # it may well be in the workspace: only plan and apply can tell
        ctx.report(res, link.loc, "REF001", f"{kind.value} '{ref}' is not in the tree{hint}; whether the workspace "
                                            "has it is checked by plan and apply (validated offline)", Severity.WARNING)
        return
    ctx.report(res, link.loc, "REF001", f"{kind.value} '{ref}' not found in the tree or the workspace{hint}")


def _endpoint(ctx: RuleContext, res: SpecResource, link: Link) -> None:
    kind = link.target
    assert kind is not None
    if ctx.in_tree(kind, link.text) or (kind, link.text) in ctx.existing:
        return
    other = Kind.BATCH_ENDPOINT if kind is Kind.ONLINE_ENDPOINT else Kind.ONLINE_ENDPOINT
    hint = f" (there is a {other.value} of that name)" if ctx.in_tree(other, link.text) else ""
    ctx.report(res, link.loc, "REF004", f"{kind.value} '{link.text}' not found{hint}")


def _path(ctx: RuleContext, res: SpecResource, link: Link) -> None:
    check = check_local_path(res.base_dir, link.text, ctx.tree.boundary)
    if not check.inside:
        where = "the Git work tree" if ctx.tree.boundary != ctx.tree.root else "the repository"
        ctx.report(res, link.loc, "REF003", f"path '{link.text}' points outside {where} ({ctx.tree.boundary})")
        return
    if not check.exists:
        unresolved = res.base_dir / local_path(link.text)
        if unresolved.is_symlink():
            ctx.report(res, link.loc, "PATH002", f"path '{link.text}' is a link that leads nowhere")
        elif not Path(f"{check.resolved}.dvc").is_file():  # DVC data is fetched at apply
            ctx.report(res, link.loc, "REF002", f"path '{link.text}' does not exist (relative to {res.file})")
        return
    _, problems = scan(check.resolved, ctx.tree.boundary)  # what plan would store: links, devices, FIFOs
    for problem in problems[:5]:
        ctx.report(res, link.loc, problem.code, f"path {problem.describe(link.text.rstrip('/'))}")
    if len(problems) > 5:
        ctx.report(res, link.loc, "PATH001", f"path '{link.text}': {len(problems) - 5} more entries cannot be stored")


def _scoring_script(ctx: RuleContext, res: SpecResource) -> None:
    cc: Any = getattr(res.model, "code_configuration", None)
    if cc is None:
        return
    code = check_local_path(res.base_dir, cc.code, ctx.tree.boundary)
    if code.exists and not (code.resolved / cc.scoring_script).is_file():
        ctx.report(res, ("code_configuration", "scoring_script"), "REF005",
                   f"scoring script '{cc.scoring_script}' not found in '{cc.code}'")


def _job_output(ctx: RuleContext, res: SpecResource, link: Link) -> None:
    ref = parse_job_output(link.text)
    assert ref is not None
    jobs = ctx.in_tree(Kind.JOB, ref.job)
    if not jobs:
        ctx.report(res, link.loc, "REF007", f"'{link.text}': there is no job '{ref.job}' in the tree")
        return
    outputs = getattr(jobs[0].model, "outputs", None) or {}
    if ref.output not in outputs:
        ctx.report(res, link.loc, "REF007", f"'{link.text}': job '{ref.job}' has no output '{ref.output}' "
                                            f"(outputs: {', '.join(sorted(outputs)) or 'none'})")


def check(ctx: RuleContext) -> None:
    for res in ctx.tree.resources:
        for link in res.links:
            if link.role == "job_output":
                _job_output(ctx, res, link)
            elif link.role == "endpoint":
                _endpoint(ctx, res, link)
            elif link.text.startswith("azureml:") and parse_asset_ref(link.text) is not None:
                _asset(ctx, res, link)
            elif ((link.target is Kind.ENVIRONMENT and _curated(ctx, res, link))  # a registry URI, checked
                  or link.target is Kind.ONLINE_DEPLOYMENT or is_remote(link.text) or link.text.startswith("${{")):
                continue
            else:
                _path(ctx, res, link)
        _scoring_script(ctx, res)
        _batch_default(ctx, res)


def _batch_default(ctx: RuleContext, res: SpecResource) -> None:
    if res.kind is not Kind.BATCH_ENDPOINT:
        return
    defaults: Any = getattr(res.model, "defaults", None)
    if defaults is None or not defaults.deployment_name:
        return
    name = f"{res.name}/{defaults.deployment_name}"
    if not ctx.in_tree(Kind.BATCH_DEPLOYMENT, name) and (Kind.BATCH_DEPLOYMENT, name) not in ctx.existing:
        ctx.report(res, ("defaults", "deployment_name"), "REF004",
                   f"default deployment '{defaults.deployment_name}' of batch endpoint '{res.name}' not found")
