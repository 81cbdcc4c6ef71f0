"""Rows of the metadata store as state objects, for the SQLAlchemy store and the standard-library reader alike.

Nothing here imports SQLAlchemy: a row is any mapping of column names to values.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol

from mlops_gitops.addresses import Address, Kind
from mlops_gitops.errors import WorkspaceError
from mlops_gitops.state import ActualResource, ArtifactFile, JobOutputs


class Row(Protocol):
    """A row by column name: SQLAlchemy's RowMapping or sqlite3.Row."""

    def __getitem__(self, key: str, /) -> Any: ...


def loads(text: str | None, where: str, empty: Any = None) -> Any:
    """A JSON column's value; a corrupt one is a clear error naming the table and column, never a crash."""
    if not text:
        return {} if empty is None else empty
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise WorkspaceError(f"the workspace database is damaged: {where} holds invalid JSON ({exc}); restore the "
                             "database from a backup, or fix or delete that row") from None


def to_actual(row: Row, files: tuple[ArtifactFile, ...]) -> ActualResource:
    """A row of mg_resources (with its files) as the resource it records."""
    address = Address(Kind(row["kind"]), row["name"], row["version"] or None)
    where = f"the row of {address}"
    return ActualResource(
        address=address,
        spec=loads(row["spec"], f"mg_resources.spec of {where}"), derived=loads(row["derived"], f"derived of {where}"),
        content_hash=row["content_hash"], spec_hash=row["spec_hash"],
        applied_spec=loads(row["applied_spec"], f"applied_spec of {where}") if row["applied_spec"] else None,
        applied_hash=row["applied_hash"], status=row["status"], managed=bool(row["managed"]),
        source_file=row["source_file"], created_at=row["created_at"], updated_at=row["updated_at"],
        provenance=loads(row["provenance"], f"provenance of {where}"),
        schema_name=row["schema_name"], files=files)


def job_outputs(rows: Iterable[Row]) -> JobOutputs:
    """The outputs of completed runs (id, pipeline, outputs), oldest first: the latest run of each job wins."""
    out: JobOutputs = {}
    for row in rows:
        outputs = {name: tuple(ArtifactFile(rel, sha, size) for rel, sha, size in rec.get("files", []))
                   for name, rec in loads(row["outputs"], f"mg_runs.outputs of run {row['id']}").items()}
        out[row["pipeline"]] = (row["id"], outputs)
    return out
