"""What every command needs: the project, the workspace backend, output helpers and exit codes."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from mlops_gitops import progress
from mlops_gitops.backends.factory import open_backend, workspace_backend
from mlops_gitops.diagnostics import Diagnostic
from mlops_gitops.spec.project import Project, open_project, resolve_workspace, workspace_config
from mlops_gitops.textsafe import defuse_text

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


def capability(backend: Any, attribute: str, what: str, owner: Any = None) -> Any:
    """What only some backends offer (schedules, monitors, batch jobs, conversions), or an error naming the
    backend; `owner`: where to look on it (its runs), the backend itself by default."""
    found = getattr(backend if owner is None else owner, attribute, None)
    if found is None:
        from mlops_gitops.errors import WorkspaceError

        raise WorkspaceError(f"the {backend.name} backend does not {what}")
    return found

__all__ = ["EXIT_CHANGES", "EXIT_ERROR", "EXIT_OK", "Project", "check_repository", "err", "open_backend",
           "open_project", "out", "print_warnings", "resolve_workspace", "runner_command", "use_color",
           "workspace_backend", "workspace_config"]


def use_color(flag: bool | None) -> bool:
    if flag is not None:
        return flag
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def out(text: str = "") -> None:
    with progress.current().writing():  # the status line of a running task steps aside
        print(defuse_text(text), flush=True)


def err(text: str) -> None:
    with progress.current().writing():
        print(defuse_text(text), file=sys.stderr, flush=True)


def runner_command(text: str) -> None:
    """Our own runner commands (`::error …`, `##vso[…]`): their data is escaped where they are made."""
    with progress.current().writing():
        print(text, flush=True)


def check_repository(project: Project, command: str) -> None:
    """Without mlops.yaml the folder itself is the repository: say so, and refuse one with no resource files."""
    if project.config_file is not None:
        return
    from mlops_gitops.errors import ConfigError
    from mlops_gitops.spec.tree import load_tree

    root = project.root
    if not load_tree(root).resources:
        raise ConfigError(f"no mlops.yaml at or above {root} (the search stops at a Git work tree's top) and no "
                          f"resource files (YAML with `$schema`) under it; run {command} in a repository, or "
                          f"name its folder: mlops-gitops {command} example-repo")
    err(f"Note: no mlops.yaml at or above {root}: its YAML files are the repository, and the workspace is "
        f"'local' in {root / '.mlops' / 'local'}.")


def print_warnings(warnings: Sequence[Diagnostic], documents: int = 0) -> None:
    if warnings:
        from mlops_gitops.validate.report import as_text

        err(as_text(list(warnings), documents).rsplit("\n", 1)[0])
