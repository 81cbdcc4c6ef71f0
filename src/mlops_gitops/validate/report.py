"""Render diagnostics as text, JSON or GitHub workflow annotations."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from mlops_gitops.diagnostics import Diagnostic, Severity


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_prop(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def as_text(diags: Sequence[Diagnostic], files_checked: int) -> str:
    lines = [f"{d.location()}: {d.severity.value} {d.code}: {d.message}" for d in diags]
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
        props = [f"file={_escape_prop(path)}"] if path else []
        if d.line:
            props += [f"line={d.line}", f"col={d.column}"]
        props.append(f"title={_escape_prop(d.code)}")
        level = "error" if d.severity is Severity.ERROR else "warning"
        lines.append(f"::{level} {','.join(props)}::{_escape_data(d.message)}")
    return "\n".join(lines)
