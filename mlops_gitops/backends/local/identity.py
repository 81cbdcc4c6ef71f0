"""Which store a workspace folder belongs to: a marker file beside the artifacts.

A folder's files (model versions, run outputs, keys) mean something only with the metadata store that
records them. If that store is missing or empty — a `${MLOPS_DB}` left unset, a `state.db` truncated or
deleted — treating the folder as a new workspace would register everything again as version 1 and let
garbage collection delete files the real store still references. So a store that is empty while the
folder holds artifacts or a marker is refused, and a store whose workspace id differs from the folder's marker
is refused too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mlops_gitops.actor import now
from mlops_gitops.backends.local.artifacts import ArtifactStore
from mlops_gitops.errors import WorkspaceError


@dataclass(frozen=True)
class Marker:
    workspace_id: str | None  # None: the marker exists but cannot be read
    database: str = ""
    created_at: str = ""


def read_marker(files: ArtifactStore) -> Marker | None:
    text = files.read_marker()
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return Marker(None)
    if not isinstance(data, dict):
        return Marker(None)
    return Marker(str(data.get("workspace_id") or data.get("lineage") or "") or None, str(data.get("database", "")),
                  str(data.get("created_at", "")))


def write_marker(files: ArtifactStore, workspace_id: str, database: str) -> None:
    document = {"workspace_id": workspace_id, "database": database, "created_at": now(),
                "note": "mlops-gitops: these files belong to the metadata store with this workspace id"}
    files.write_marker(json.dumps(document, indent=2) + "\n")


def check_store(files: ArtifactStore, workspace_id: str | None, database: str) -> None:
    """Refuse a store that does not match the files: empty beside stored files, or another workspace."""
    marker = read_marker(files)
    if workspace_id is None:
        count = files.count(1000)
        if marker is None and count == 0:
            return  # a new workspace
        found = []
        if marker is not None:
            found.append(f"the marker {files.marker_location} of workspace {marker.workspace_id or '(unreadable)'}"
                         + (f", created {marker.created_at}" if marker.created_at else "")
                         + (f" with database {marker.database}" if marker.database else ""))
        if count:
            found.append(f"{count if count < 1000 else 'over 1,000'} stored file(s) under {files.location}")
        raise WorkspaceError(
            f"the metadata store {database} is empty or missing, but the workspace's files ({files.location}) hold "
            + " and ".join(found) + ". Using it now would register everything again as new versions and could "
            "delete files that the real store references. If the database moved or a variable in `database:` "
            "is unset, point the workspace at the real store (or restore state.db from a backup). To start a "
            f"new, empty workspace deliberately, move {files.location} aside first.")
    if marker is not None and marker.workspace_id != workspace_id:
        raise WorkspaceError(
            f"the workspace's files {files.location} belong to workspace "
            f"{marker.workspace_id or '(unreadable marker)'}"
            + (f" (database {marker.database})" if marker.database else "")
            + f", but the metadata store {database} has workspace id {workspace_id}. "
            "Point `path`, `database` and `artifacts` of this workspace at the files and store that belong "
            "together.")
