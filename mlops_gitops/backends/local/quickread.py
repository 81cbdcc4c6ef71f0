"""The state of a workspace read with the database's own driver, for commands that only look.

`validate` runs on every save (pre-commit hooks, editors); importing SQLAlchemy costs more than the whole
check. This reads the same rows as LocalStore.read() through `sqlite3` in read-only mode, after the same
store-identity check, or, for a shared workspace on PostgreSQL, through psycopg (a plan reads metadata only:
the object store is not touched). It gives up (None) on anything unexpected — a store of another schema
version, a locked or damaged file, a server that refuses — so that the caller takes the full path and its
messages.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops_gitops.addresses import Kind
from mlops_gitops.backends.local import rows
from mlops_gitops.backends.local.artifacts import FolderArtifacts
from mlops_gitops.backends.local.identity import check_store
from mlops_gitops.state import ArtifactFile, Snapshot


def read_snapshot(folder: Path) -> Snapshot | None:
    """The snapshot of the SQLite store in `folder`; None when the full store must answer instead."""
    db_file = folder / "state.db"
    if not db_file.exists():  # a workspace never written reads as empty, unless its files say it was
        check_store(FolderArtifacts(folder), None, f"sqlite:///{db_file}")
        return Snapshot(None, 0)
    if not db_file.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{db_file.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return None
    try:
        conn.row_factory = sqlite3.Row
        url = f"sqlite:///{db_file}"
        return _read(conn, lambda workspace_id: check_store(FolderArtifacts(folder), workspace_id, url))
    except (sqlite3.Error, KeyError, IndexError, ValueError):
        return None  # the full path says what is wrong, in its words
    finally:
        conn.close()


def read_postgres(url: str) -> Snapshot | None:
    """The snapshot of a PostgreSQL store, metadata only; None when the full store must answer instead."""
    if not url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        return None
    try:
        import psycopg
        from psycopg.rows import dict_row
    except ImportError:
        return None
    try:
        conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1), row_factory=dict_row,
                               connect_timeout=10)
    except psycopg.Error:
        return None
    try:
        return _read(conn, lambda workspace_id: None)
    except (psycopg.Error, KeyError, IndexError, ValueError):
        return None
    finally:
        conn.close()


def _read(conn: Any, identity: Callable[[str], None]) -> Snapshot | None:
    meta = {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM mg_meta")}
    workspace_id = meta.get("workspace_id") or meta.get("lineage")
    if not workspace_id:
        return None
    identity(str(workspace_id))
    files: dict[int, list[ArtifactFile]] = {}
    for f in conn.execute("SELECT resource_id, rel, sha256, size FROM mg_asset_files ORDER BY rel"):
        files.setdefault(f["resource_id"], []).append(ArtifactFile(f["rel"], f["sha256"], f["size"]))
    serial = conn.execute("SELECT value FROM mg_serial").fetchone()
    secret = meta.get("secret")
    snap = Snapshot(str(workspace_id), int(serial["value"]) if serial else 0,
                    secret=bytes.fromhex(secret) if secret else None)
    for row in conn.execute("SELECT * FROM mg_resources"):
        res = rows.to_actual(row, tuple(files.get(row["id"], ())))
        snap.resources[res.address] = res
    for c in conn.execute("SELECT kind, name, last FROM mg_counters"):
        snap.counters[(Kind(c["kind"]), c["name"])] = c["last"]
    snap.job_outputs = rows.job_outputs(conn.execute(
        "SELECT id, pipeline, outputs FROM mg_runs WHERE status = 'completed' ORDER BY finished_at"))
    return snap
