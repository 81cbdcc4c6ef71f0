"""`mlops-gitops validate PATH...`: schema and semantic checks; exit 0 when valid, 1 otherwise."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

from mlops_gitops.backends.factory import read_snapshot
from mlops_gitops.commands import args
from mlops_gitops.commands.common import (
    EXIT_ERROR,
    EXIT_OK,
    open_project,
    out,
    resolve_workspace,
    runner_command,
)
from mlops_gitops.diagnostics import Diagnostic, Diagnostics
from mlops_gitops.errors import ConfigError
from mlops_gitops.plan.desired import build_desired
from mlops_gitops.plan.promotion import unknown_gate_metrics
from mlops_gitops.spec.tree import find_root, load_tree
from mlops_gitops.state import Snapshot
from mlops_gitops.validate import report, validate_tree


def validate(paths: list[str], strict: bool = False, fmt: str = "text", workspace: str | None = None,
             offline: bool = False, schema_only: bool = False) -> int:
    """Validate whole trees (directories) or single files against their whole tree."""
    targets = [Path(p) for p in paths or ["."]]
    for t in targets:
        if not t.exists():
            raise ConfigError(f"path '{t}' does not exist")
    if schema_only:
        return _schema_only(targets, fmt)
    groups: dict[Path, list[str]] = {}
    for t in targets:  # files of several trees (a pre-commit run): each against its own tree
        groups.setdefault(find_root(t), []).append(str(t))
    if len(groups) > 1:
        codes = [validate(group, strict, fmt, workspace, offline) for group in groups.values()]
        return max(codes)
    project = open_project(targets[0])
    root = project.root
    tree = load_tree(root, strict)
    resolve_workspace(project, workspace)  # a workspace that cannot be right is an error, offline too
    snapshot = Snapshot(None, 0) if offline else read_snapshot(project, workspace)
    diags = validate_tree(tree, snapshot.index(), offline=offline)
    if snapshot.workspace_id is not None and not diags.has_errors():
        desired = build_desired(tree, snapshot)
        diags.extend(desired.diagnostics)  # VER001 against the workspace
        unknown_gate_metrics(desired, snapshot, diags)  # GATE001: the metrics its runs wrote
    if strict or project.config.strict:
        diags.promote_warnings()
    selected = _select(diags, targets, root)
    checked = len(_files_in_scope(tree.files, targets, root))
    if fmt == "json":
        out(report.as_json(selected, checked))
    elif fmt in ("github", "azure"):
        if fmt == "github":
            text = report.as_github(selected, root)
        else:
            from mlops_gitops.integrations.azure import as_azure

            text = as_azure(selected, root)
        if text:
            runner_command(text)
        out(report.as_text(selected, checked).splitlines()[-1])
    else:
        out(report.as_text(selected, checked))
    return EXIT_ERROR if any(d.severity.value == "error" for d in selected) else EXIT_OK


def _schema_only(targets: list[Path], fmt: str) -> int:
    from mlops_gitops.validate.schema_only import check_files

    root = Path.cwd()
    paths = [p for t in targets for p in ([t] if t.is_file() else sorted([*t.rglob("*.yml"), *t.rglob("*.yaml")]))]
    diags, checked = check_files(paths, root)
    selected = diags.sorted()
    if fmt == "json":
        out(report.as_json(selected, checked))
    elif fmt == "github":
        text = report.as_github(selected, root)
        if text:
            runner_command(text)
    else:
        out(report.as_text(selected, checked))
    return EXIT_ERROR if any(d.severity.value == "error" for d in selected) else EXIT_OK


def _scope(targets: list[Path], root: Path) -> list[str] | None:
    """Repository-relative prefixes the user asked about; None means the whole tree."""
    prefixes = []
    for t in targets:
        rel = t.resolve().relative_to(root).as_posix() if t.resolve() != root else ""
        if not rel:
            return None
        prefixes.append(rel)
    return prefixes


def _in(file: str, prefixes: list[str] | None) -> bool:
    return prefixes is None or any(file == p or file.startswith(p + "/") for p in prefixes)


def _select(diags: Diagnostics, targets: list[Path], root: Path) -> list[Diagnostic]:
    prefixes = _scope(targets, root)
    # Diagnostics without a file (e.g. about mlops.yaml) always show.
    return [d for d in diags.sorted() if not d.file or d.file in ("mlops.yaml", "mlops.yml") or _in(d.file, prefixes)]


def _files_in_scope(files: Iterable[str], targets: list[Path], root: Path) -> list[str]:
    prefixes = _scope(targets, root)
    return [f for f in files if _in(f, prefixes)]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", default=["."], help="folders or files (default: current folder)")
    p.add_argument("--strict", action="store_true", help="unknown fields and other warnings are errors")
    args.fmt(p, "text", "json", "github", "azure")
    p.add_argument("-w", "--workspace", help="workspace to check versions and references against")
    p.add_argument("--offline", action="store_true", help="do not read the workspace")
    p.add_argument("--schema-only", action="store_true",
                   help="check files against the JSON Schemas alone (no tree, no references)")
    args.examples(p, "mlops-gitops validate example-repo",
                  "mlops-gitops validate --offline --format github example-repo/models example-repo/endpoints")
    p.set_defaults(run=validate)
