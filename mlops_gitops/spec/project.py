"""A project: the tree's root with its `mlops.yaml`, and the workspaces it names, resolved to settings."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mlops_gitops.diagnostics import Diagnostics
from mlops_gitops.errors import ConfigError, SpecError
from mlops_gitops.spec.config import RepoConfig, WorkspaceConfig
from mlops_gitops.spec.tree import find_root, load_config


@dataclass
class Project:
    root: Path
    config: RepoConfig
    config_file: str | None = None  # None: no mlops.yaml was found; the folder itself is the repository


@dataclass(frozen=True)
class WorkspaceSettings:
    """One workspace of mlops.yaml with `${VAR}` expanded and paths made absolute: what a backend is built from."""

    name: str
    backend: str
    path: Path  # the local folder (the local backend's files; other backends keep caches here)
    database: str | None  # None: SQLite in the folder
    artifacts: str | None  # None: content-addressed files in the folder; else an fsspec URL
    runtime: str
    port: int
    base_image: str | None
    config: WorkspaceConfig
    serving: str = "apply"  # apply | hosts


def open_project(path: str | Path = ".") -> Project:
    target = Path(path)
    if not target.exists():
        raise ConfigError(f"path '{path}' does not exist")
    root = find_root(target)
    diags = Diagnostics()
    config, config_file = load_config(root, diags)
    if diags.has_errors():
        raise SpecError("mlops.yaml is invalid", diags.sorted())
    return Project(root, config, config_file)


def workspace_config(project: Project, workspace: str | None) -> tuple[str, WorkspaceConfig]:
    chosen = workspace or os.environ.get("MLOPS_GITOPS_WORKSPACE")
    try:
        return project.config.workspace(chosen)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None


def resolve_workspace(project: Project, workspace: str | None) -> WorkspaceSettings:
    """The chosen workspace's settings; a setting that cannot be right is an error naming its line."""
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
    artifacts = config.expand(ws.artifacts, "workspaces", name, "artifacts") if ws.artifacts else None
    if artifacts is not None and not artifacts.strip():
        raise ConfigError(f"{config.where('workspaces', name, 'artifacts')}: workspace '{name}' has an empty "
                          "artifacts URL; remove `artifacts` to keep the files in the workspace folder")
    runtime = os.environ.get("MLOPS_GITOPS_RUNTIME") or ws.runtime  # e.g. none for CI previews
    return WorkspaceSettings(name=name, backend=ws.backend, path=path, database=database, artifacts=artifacts,
                             runtime=runtime, port=ws.port, base_image=ws.base_image, config=ws,
                             serving=ws.serving)


def setting_location(project: Project, settings: WorkspaceSettings, key: str) -> str:
    """`mlops.yaml:LINE:COL` of one of the workspace's settings (for messages about it)."""
    return project.config.where("workspaces", settings.name, key)
