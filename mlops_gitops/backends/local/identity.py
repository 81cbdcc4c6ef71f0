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
from pathlib import Path

from mlops_gitops.actor import now
from mlops_gitops.errors import WorkspaceError
from mlops_gitops.fsutil import write_private

MARKER = "workspace.json"


@dataclass(frozen=True)
class Marker:
    workspace_id: str | None  # None: the marker exists but cannot be read
    database: str = ""
    created_at: str = ""


def read_marker(folder: Path) -> Marker | None:
    path = folder / MARKER
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Marker(None)
    if not isinstance(data, dict):
        return Marker(None)
    return Marker(str(data.get("workspace_id") or data.get("lineage") or "") or None, str(data.get("database", "")),
                  str(data.get("created_at", "")))


def write_marker(folder: Path, workspace_id: str, database: str) -> None:
    document = {"workspace_id": workspace_id, "database": database, "created_at": now(),
                "note": "mlops-gitops: this folder's files belong to the metadata store with this workspace id"}
    write_private(folder / MARKER, json.dumps(document, indent=2) + "\n")


def stored_files(folder: Path) -> int:
    """How many content-addressed files the folder holds (stops counting at 1,000)."""
    root = folder / "artifacts" / "sha256"
    count = 0
    if root.is_dir():
        for sub in root.iterdir():
            if sub.is_dir():
                count += sum(1 for f in sub.iterdir() if not f.name.startswith(".tmp-"))
                if count >= 1000:
                    break
    return count


def check_store(folder: Path, workspace_id: str | None, database: str) -> None:
    """Refuse a store that does not match the folder: empty beside stored files, or another workspace."""
    marker = read_marker(folder)
    if workspace_id is None:
        files = stored_files(folder)
        if marker is None and files == 0:
            return  # a new workspace
        found = []
        if marker is not None:
            found.append(f"the marker {folder / MARKER} of workspace {marker.workspace_id or '(unreadable)'}"
                         + (f", created {marker.created_at}" if marker.created_at else "")
                         + (f" with database {marker.database}" if marker.database else ""))
        if files:
            found.append(f"{files if files < 1000 else 'over 1,000'} stored file(s) under {folder / 'artifacts'}")
        raise WorkspaceError(
            f"the metadata store {database} is empty or missing, but the workspace folder {folder} holds "
            + " and ".join(found) + ". Using it now would register everything again as new versions and could "
            "delete files that the real store references. If the database moved or a variable in `database:` "
            "is unset, point the workspace at the real store (or restore state.db from a backup). To start a "
            f"new, empty workspace deliberately, move {folder} aside first.")
    if marker is not None and marker.workspace_id != workspace_id:
        raise WorkspaceError(
            f"the workspace folder {folder} belongs to workspace {marker.workspace_id or '(unreadable marker)'}"
            + (f" (database {marker.database})" if marker.database else "")
            + f", but the metadata store {database} has workspace id {workspace_id}. "
            "Point `path` and `database` of this workspace at the folder and store that belong together.")
