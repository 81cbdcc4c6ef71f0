"""What every command needs: the project root, its config, the workspace backend, output helpers."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_gitops.diagnostics import Diagnostics
from mlops_gitops.errors import ConfigError, SpecError
from mlops_gitops.spec.config import RepoConfig, WorkspaceConfig
from mlops_gitops.spec.tree import find_root, load_config
from mlops_gitops.textsafe import defuse_text

if TYPE_CHECKING:
    from mlops_gitops.backends.local import LocalBackend
    from mlops_gitops.events.sinks import Sink

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


@dataclass
class Project:
    root: Path
    config: RepoConfig


def open_project(path: str | Path = ".") -> Project:
    target = Path(path)
    if not target.exists():
        raise ConfigError(f"path '{path}' does not exist")
    root = find_root(target)
    diags = Diagnostics()
    config, _ = load_config(root, diags)
    if diags.has_errors():
        raise SpecError("mlops.yaml is invalid", diags.sorted())
    return Project(root, config)


def workspace_config(project: Project, workspace: str | None) -> tuple[str, WorkspaceConfig]:
    chosen = workspace or os.environ.get("MLOPS_GITOPS_WORKSPACE")
    try:
        return project.config.workspace(chosen)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None


def workspace_location(project: Project, workspace: str | None) -> tuple[str, Path, str | None]:
    """Name, folder and database URL (None: SQLite in the folder) of the chosen workspace."""
    name, ws = workspace_config(project, workspace)
    config = project.config
    configured = name in config.workspaces
    path = Path(config.expand(ws.path, "workspaces", name, "path")) if ws.path else Path(".mlops") / name
    if not path.is_absolute():
        path = project.root / path
    path = Path(os.path.abspath(path))
    if project.root.resolve().is_relative_to(path.resolve()):
        where = config.where("workspaces", name, "path") if configured else "the workspace"
        raise ConfigError(f"{where}: workspace '{name}' would be {path}, which holds the repository itself; "
                          "give it a folder of its own (for example .mlops/" + name + ")")
    database = config.expand(ws.database, "workspaces", name, "database") if ws.database else None
    if database is not None and not database.strip():
        raise ConfigError(f"{config.where('workspaces', name, 'database')}: workspace '{name}' has an empty "
                          "database URL; remove `database` to keep the SQLite store in its folder")
    return name, path, database


def open_backend(project: Project, workspace: str | None) -> tuple[str, LocalBackend]:
    from mlops_gitops.backends.local import LocalBackend  # SQLAlchemy costs ~0.2 s to import

    name, path, database = workspace_location(project, workspace)
    _, ws = workspace_config(project, workspace)
    runtime = os.environ.get("MLOPS_GITOPS_RUNTIME") or ws.runtime  # e.g. none for CI previews
    return name, LocalBackend(path, database, runtime=runtime, port=ws.port, base_image=ws.base_image,
                              sinks=sinks_for(project), source=f"mlops-gitops://local/{name}")


def sinks_for(project: Project) -> list[Sink]:
    """The notification sinks of mlops.yaml (`${VAR}` expanded: secrets stay out of the repository)."""
    from mlops_gitops.events.sinks import CommandSink, FileSink, WebhookSink

    sinks: list[Sink] = []
    config = project.config
    for i, n in enumerate(config.notifications):
        if n.type == "webhook" and n.url:
            url = config.expand(n.url, "notifications", i, "url")
            if not url:
                continue  # `${MLOPS_WEBHOOK_URL:-}`: this sink is off where the variable is unset
            secret = config.expand(n.secret, "notifications", i, "secret") if n.secret else None
            sinks.append(WebhookSink(url, secret, list(n.events)))
        elif n.type == "file" and n.path:
            path = Path(config.expand(n.path, "notifications", i, "path"))
            sinks.append(FileSink(path if path.is_absolute() else project.root / path, list(n.events)))
        elif n.type == "command" and n.command:
            sinks.append(CommandSink(n.command, list(n.events)))
    return sinks  # type github: delivered by the GitHub integration, not here


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


@contextmanager
def workspace_backend(project: Project, workspace: str | None) -> Iterator[tuple[str, LocalBackend]]:
    """The chosen workspace's backend, closed (its connections released) when the block ends."""
    name, backend = open_backend(project, workspace)
    try:
        yield name, backend
    finally:
        backend.close()
