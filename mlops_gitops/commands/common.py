"""What every command needs: the project, the workspace backend, output helpers and exit codes."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from mlops_gitops.backends.factory import open_backend, workspace_backend
from mlops_gitops.diagnostics import Diagnostic
from mlops_gitops.spec.project import Project, open_project, resolve_workspace, workspace_config
from mlops_gitops.textsafe import defuse_text

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2

__all__ = ["EXIT_CHANGES", "EXIT_ERROR", "EXIT_OK", "Project", "err", "open_backend", "open_project", "out",
           "print_warnings", "resolve_workspace", "runner_command", "use_color", "workspace_backend",
           "workspace_config"]


def use_color(flag: bool | None) -> bool:
    if flag is not None:
        return flag
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def out(text: str = "") -> None:
    print(defuse_text(text), flush=True)


def err(text: str) -> None:
    print(defuse_text(text), file=sys.stderr, flush=True)


def runner_command(text: str) -> None:
    """Our own runner commands (`::error …`, `##vso[…]`): their data is escaped where they are made."""
    print(text, flush=True)


def print_warnings(warnings: Sequence[Diagnostic], documents: int = 0) -> None:
    if warnings:
        from mlops_gitops.validate.report import as_text

        err(as_text(list(warnings), documents).rsplit("\n", 1)[0])
