"""Render diagnostics as text, JSON or GitHub workflow annotations."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from mlops_gitops.diagnostics import Diagnostic, Severity
from mlops_gitops.textsafe import escape, github_data, github_property


def _location(d: Diagnostic) -> str:
    where = escape(d.location())
    return f"./{where}" if where.startswith(("#", ":")) else where  # a file name never starts a runner command


def as_text(diags: Sequence[Diagnostic], files_checked: int) -> str:
    lines = [f"{_location(d)}: {d.severity.value} {d.code}: {escape(d.message)}" for d in diags]
    errors = sum(d.severity is Severity.ERROR for d in diags)
    warnings = len(diags) - errors
    if errors or warnings:
        lines.append(f"{errors} error(s), {warnings} warning(s) in {files_checked} file(s).")
    else:
        lines.append(f"{files_checked} file(s) valid.")
    return "\n".join(lines)


def as_json(diags: Sequence[Diagnostic], files_checked: int) -> str:
    errors = sum(d.severity is Severity.ERROR for d in diags)
    return json.dumps({"valid": errors == 0, "files_checked": files_checked, "error_count": errors,
                       "warning_count": len(diags) - errors, "diagnostics": [d.to_dict() for d in diags]}, indent=2)


def as_github(diags: Sequence[Diagnostic], root: Path) -> str:
    lines = []
    for d in diags:
        path = os.path.relpath(root / d.file, Path.cwd()) if d.file else ""
        props = [f"file={github_property(path)}"] if path else []
        if d.line:
            props += [f"line={d.line}", f"col={d.column}"]
        props.append(f"title={github_property(d.code)}")
        level = "error" if d.severity is Severity.ERROR else "warning"
        lines.append(f"::{level} {','.join(props)}::{github_data(d.message)}")
    return "\n".join(lines)
