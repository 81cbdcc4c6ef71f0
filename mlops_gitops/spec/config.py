"""The repository config `mlops.yaml`: workspaces, include/exclude globs, notifications, policies."""

from __future__ import annotations

import os
import re
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, field_validator

from mlops_gitops.errors import ConfigError
from mlops_gitops.spec.kinds.common import ImageRef, Strict

CONFIG_NAMES = ("mlops.yaml", "mlops.yml")
DEFAULT_INCLUDE = ["**/*.yml", "**/*.yaml"]
DEFAULT_WORKSPACE = "local"


class WorkspaceConfig(Strict):
    backend: Literal["local"] = "local"
    path: str | None = Field(None, description="Workspace folder; default .mlops/<workspace> in the repository.")
    database: str | None = Field(
        None, description="SQLAlchemy URL of the metadata store; default sqlite:///<path>/state.db."
    )
    artifacts: str | None = Field(
        None, description="Where the workspace keeps its files (content-addressed): an object store URL such as "
                          "az://container/prefix or s3://bucket/prefix (through fsspec); default <path>/artifacts.")
    runtime: Literal["process", "container", "none"] = Field(
        "process", description="process: serve online deployments as local processes; container: as containers "
                               "of their images (Docker Engine API, DOCKER_HOST); none: record them only.")
    port: int = Field(0, ge=0, le=65535, description="Port of the endpoint host; 0 picks a free one.")
    promote_latest: bool = Field(
        True, description="A deployment naming a model @latest, where a pipeline of the apply registers that "
                          "model's next version, serves that version after the same apply (false: the version "
                          "@latest names at plan time; `--no-promote` for one plan or apply).")
    endpoint_ports: dict[str, Annotated[int, Field(ge=1, le=65535)]] = Field(
        default_factory=dict, description="A port of its own for an endpoint ({name: port}), on which the endpoint "
                                          "host serves it under Triton's routes (/v2/models/<model>/infer with the "
                                          "model names of a triton_model repository), as Azure gives each endpoint "
                                          "a host name of its own.")
    serving: Literal["apply", "hosts"] = Field(
        "apply", description="apply: apply loads deployments into this machine's endpoint host and moves traffic "
                             "itself; hosts: apply records them only, and every host running `mlops-gitops serve "
                             "--follow` (a long-lived server sharing the workspace's database and artifacts) "
                             "converges to them.")
    base_image: ImageRef | None = Field(
        None, description="Base image of deployment images (runtime: container, package), in place of the "
                          "environments' own images; default: the environment's image, else "
                          "mlops-gitops-base:bookworm.")


class DatastoreConfig(Strict):
    """Where `azureml://datastores/<name>/paths/…` inputs are read from (Azure Blob Storage, through adlfs)."""

    type: Literal["azure_blob", "azure_data_lake_gen2"] = "azure_blob"
    account_url: str = Field(description="https://ACCOUNT.blob.core.windows.net (or an emulator's URL, such as "
                                         "Azurite's http://127.0.0.1:10000/devstoreaccount1).")
    container: str = Field(description="The blob container (the file system of a Data Lake Gen2 account).")
    credential: str | None = Field(None, description="An account key or SAS token, e.g. ${AZURE_STORAGE_KEY}; "
                                                     "default: connection_string, else DefaultAzureCredential.")
    connection_string: str | None = Field(None, description="An Azure Storage connection string, e.g. "
                                                            "${AZURE_STORAGE_CONNECTION_STRING}.")


class NotificationConfig(Strict):
    type: Literal["webhook", "file", "command", "github"]
    url: str | None = None
    path: str | None = None
    command: str | list[str] | None = None
    secret: str | None = None
    events: list[str] = Field(default_factory=lambda: ["*"])


class SmtpConfig(Strict):
    """The mail server that sends monitors' alert_notification.emails and jobs' notification_setting.emails."""

    host: str = Field(description="The SMTP server's host name, e.g. smtp.office365.com or ${SMTP_HOST}.")
    port: int | None = Field(None, ge=1, le=65535, description="Default 465 with security: ssl, 587 with "
                                                                "starttls, else 25.")
    sender: str = Field(description="The From address, e.g. mlops@example.com.")
    username: str | None = Field(None, description="Login user, e.g. ${SMTP_USER}; none: no login.")
    password: str | None = Field(None, description="Login password: write ${SMTP_PASSWORD}, never the password.")
    security: Literal["none", "starttls", "ssl"] = Field(
        "starttls", description="starttls (upgrade the connection; the default), ssl (TLS from the start), none "
                                "(plain text: a relay on a trusted network or a test server).")
    timeout_s: float = Field(10.0, gt=0, le=300, description="Deadline of one delivery.")


class RepoConfig(Strict):
    schema_: str | None = Field(None, alias="$schema")
    workspaces: dict[str, WorkspaceConfig] = Field(default_factory=dict)
    default_workspace: str = DEFAULT_WORKSPACE
    include: list[str] = Field(default_factory=lambda: list(DEFAULT_INCLUDE))
    exclude: list[str] = Field(default_factory=list)
    prune: bool = False
    strict: bool = False
    notifications: list[NotificationConfig] = Field(default_factory=list)
    datastores: dict[str, DatastoreConfig] = Field(default_factory=dict)
    smtp: SmtpConfig | None = None
    policies: dict[str, Any] = Field(default_factory=dict)
    # where each value sits in mlops.yaml (file name, key path -> line and column), for messages
    _source: tuple[str, dict[tuple[str | int, ...], tuple[int, int]]] = PrivateAttr(("mlops.yaml", {}))

    def where(self, *loc: str | int) -> str:
        """`mlops.yaml:LINE:COLUMN` of a value (the nearest known enclosing key)."""
        name, positions = self._source
        key = tuple(loc)
        while key and key not in positions:
            key = key[:-1]
        line, col = positions.get(key, (0, 0))
        return f"{name}:{line}:{col}" if line else name

    def expand(self, text: str, *loc: str | int) -> str:
        """A value of mlops.yaml with `${VAR}` expanded; an unset variable without a default is an error."""
        try:
            return expand_env(text)
        except KeyError as exc:
            var = exc.args[0]
            raise ConfigError(
                f"{self.where(*loc)}: environment variable {var} is not set ({'.'.join(map(str, loc))} uses "
                f"${{{var}}}); set it, or write ${{{var}:-default}} to give it a default") from None

    @field_validator("workspaces")
    @classmethod
    def _names(cls, value: dict[str, WorkspaceConfig]) -> dict[str, WorkspaceConfig]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
                raise ValueError(f"workspace name '{name}' may use letters, digits, '_', '.', '-'")
        return value

    def workspace(self, name: str | None) -> tuple[str, WorkspaceConfig]:
        chosen = name or self.default_workspace
        if chosen in self.workspaces:
            return chosen, self.workspaces[chosen]
        if chosen == DEFAULT_WORKSPACE:
            return chosen, WorkspaceConfig()
        known = ", ".join(sorted({*self.workspaces, DEFAULT_WORKSPACE}))
        raise KeyError(f"unknown workspace '{chosen}' (configured: {known})")


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(text: str) -> str:
    """`${VAR}` and `${VAR:-default}` from the environment (the default also when VAR is empty, as in sh).
    An unset variable without a default raises KeyError(VAR): an empty value would silently change
    what a setting means (an empty database URL is a new SQLite store, an empty path the repository)."""

    def one(m: re.Match[str]) -> str:
        value = os.environ.get(m.group(1))
        if m.group(2) is not None:
            return value or m.group(2)
        if value is None:
            raise KeyError(m.group(1))
        return value

    return _ENV.sub(one, text)
