"""Build the backend a workspace names (`backend:` in mlops.yaml), with the notification sinks of the project."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_gitops.errors import ConfigError
from mlops_gitops.spec.project import Project, WorkspaceSettings, resolve_workspace

if TYPE_CHECKING:
    from mlops_gitops.backends.base import Backend
    from mlops_gitops.events.mail import SmtpSettings
    from mlops_gitops.events.sinks import Sink
    from mlops_gitops.runtime.remote import Datastore
    from mlops_gitops.state import Snapshot


def _local(project: Project, settings: WorkspaceSettings, sinks: list[Sink]) -> Backend:
    from mlops_gitops.backends.local.backend import LocalBackend  # SQLAlchemy costs ~0.2 s to import

    return LocalBackend(settings.path, settings.database, runtime=settings.runtime, port=settings.port,
                        base_image=settings.base_image, sinks=sinks, source=f"mlops-gitops://local/{settings.name}",
                        tree_root=project.root, artifacts=settings.artifacts, serving=settings.serving,
                        where=lambda key: project.config.where("workspaces", settings.name, key),
                        datastores=datastores_of(project), endpoint_ports=dict(settings.config.endpoint_ports),
                        smtp=smtp_of(project),
                        host_env={PROJECT_VARIABLE: str(project.root), WORKSPACE_NAME_VARIABLE: settings.name})


PROJECT_VARIABLE = "MLOPS_GITOPS_PROJECT"  # the endpoint host fires schedules with this project's mlops.yaml
WORKSPACE_NAME_VARIABLE = "MLOPS_GITOPS_WORKSPACE_NAME"


def smtp_of(project: Project) -> SmtpSettings | None:
    """mlops.yaml's mail server, `${VAR}` expanded (the password stays in the environment)."""
    from mlops_gitops.events.mail import SmtpSettings

    config = project.config
    given = config.smtp
    if given is None:
        return None

    def value(key: str, text: str | None) -> str | None:
        return config.expand(text, "smtp", key) or None if text else None

    return SmtpSettings(value("host", given.host) or "", value("sender", given.sender) or "", given.port,
                        value("username", given.username), value("password", given.password), given.security,
                        given.timeout_s)


def _local_snapshot(settings: WorkspaceSettings) -> Snapshot | None:
    """A SQLite workspace read without SQLAlchemy; a workspace never written reads as empty. A shared one
    (a database server, an object store) reads its metadata alone: the object store's SDK is never loaded."""
    if settings.database is not None:
        from mlops_gitops.backends.local.quickread import read_postgres

        quick = read_postgres(settings.database)
        if quick is not None:
            return quick
    if settings.database is not None or settings.artifacts is not None:
        from mlops_gitops.backends.local.store import LocalStore

        store = LocalStore(settings.path, settings.database, settings.artifacts, check_artifacts=False)
        try:
            return store.read()
        finally:
            store.close()
    from mlops_gitops.backends.local.quickread import read_snapshot

    return read_snapshot(settings.path)


def datastores_of(project: Project) -> dict[str, Datastore]:
    """The datastores of mlops.yaml, `${VAR}` expanded (credentials stay in the environment)."""
    from mlops_gitops.runtime.remote import Datastore

    config = project.config
    out: dict[str, Datastore] = {}
    for name, ds in config.datastores.items():
        def value(key: str, text: str | None, name: str = name) -> str | None:
            return config.expand(text, "datastores", name, key) or None if text else None

        out[name] = Datastore(name, value("account_url", ds.account_url) or "", ds.container,
                              value("credential", ds.credential), value("connection_string", ds.connection_string),
                              config.where("datastores", name))
    return out


BACKENDS: dict[str, Callable[[Project, WorkspaceSettings, list[Sink]], Backend]] = {"local": _local}
# Read-only views of a backend's state that are cheaper to open than the backend (None: open it instead).
SNAPSHOT_READERS: dict[str, Callable[[WorkspaceSettings], Snapshot | None]] = {"local": _local_snapshot}


def open_backend(project: Project, workspace: str | None) -> tuple[str, Backend]:
    settings = resolve_workspace(project, workspace)
    make = BACKENDS.get(settings.backend)
    if make is None:
        raise ConfigError(f"{project.config.where('workspaces', settings.name, 'backend')}: unknown backend "
                          f"'{settings.backend}' (available: {', '.join(sorted(BACKENDS))})")
    return settings.name, make(project, settings, sinks_for(project))


@contextmanager
def workspace_backend(project: Project, workspace: str | None) -> Iterator[tuple[str, Backend]]:
    """The chosen workspace's backend, closed (its connections released) when the block ends."""
    name, backend = open_backend(project, workspace)
    try:
        yield name, backend
    finally:
        backend.close()


def read_snapshot(project: Project, workspace: str | None) -> Snapshot:
    """The chosen workspace's state, for commands that only read it (validate)."""
    settings = resolve_workspace(project, workspace)
    quick = SNAPSHOT_READERS.get(settings.backend)
    snapshot = quick(settings) if quick is not None else None
    if snapshot is not None:
        return snapshot
    with workspace_backend(project, workspace) as (_, backend):
        return backend.read()


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
