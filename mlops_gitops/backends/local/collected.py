"""What the endpoint host collected (runtime/serving/collector.py): listed, exported, read as a monitor's window.

A file's window is its folder (`<endpoint>/<deployment>/<collection>/YYYY/MM/DD/HH…`); a window filter
reads the rows' own `time`, so a file that straddles a boundary contributes only the rows inside it.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mlops_gitops.errors import WorkspaceError
from mlops_gitops.fsutil import ensure_dir
from mlops_gitops.runtime.serving.collector import META


@dataclass
class CollectedFile:
    endpoint: str
    deployment: str
    collection: str
    window: str  # the start of its folder's window, YYYY-MM-DDTHH:MM
    path: Path
    rows: int
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "deployment": self.deployment, "collection": self.collection,
                "window": self.window, "path": str(self.path), "rows": self.rows, "bytes": self.bytes}


def _window(parts: list[str]) -> tuple[datetime, datetime]:
    """The start and end of a folder's window (its depth is the rolling rate: year … minute)."""
    numbers = [int(p) for p in parts]
    year, month, day, hour, minute = (numbers + [1, 1, 0, 0][len(numbers) - 1:])[:5]
    start = datetime(year, month, day, hour, minute, tzinfo=UTC)
    if len(numbers) >= 3:
        return start, start + {3: timedelta(days=1), 4: timedelta(hours=1)}.get(len(numbers), timedelta(minutes=1))
    if len(numbers) == 2:
        return start, start.replace(year=year + month // 12, month=month % 12 + 1)
    return start, start.replace(year=year + 1)


class Collected:
    def __init__(self, root: Path) -> None:
        self.root = root

    def files(self, endpoint: str | None = None, deployment: str | None = None, collection: str | None = None,
              since: datetime | None = None) -> list[CollectedFile]:
        import pyarrow.parquet as pq

        if not self.root.is_dir():
            return []
        found = []
        for path in sorted(self.root.rglob("*.parquet")):
            rel = path.relative_to(self.root).parts
            if len(rel) < 5 or any(p.startswith(".") for p in rel):
                continue  # not the collector's, or a file still being written
            ep, dep, coll = rel[0], rel[1], rel[2]
            if any(wanted and got != wanted for wanted, got in ((endpoint, ep), (deployment, dep), (collection, coll))):
                continue
            try:
                start, end = _window(list(rel[3:-1]))
            except ValueError:  # not a folder the collector wrote
                continue
            if since is not None and end <= since:
                continue
            found.append(CollectedFile(ep, dep, coll, start.strftime("%Y-%m-%dT%H:%M"), path,
                                       pq.ParquetFile(path).metadata.num_rows, path.stat().st_size))
        return found

    def export(self, target: Path, files: list[CollectedFile]) -> int:
        """Copies the files under target, in the same layout; returns how many."""
        for f in files:
            dest = target / f.path.relative_to(self.root)
            ensure_dir(dest.parent)
            shutil.copyfile(f.path, dest)
        return len(files)

    def window(self, endpoint: str, deployment: str, collection: str, since: datetime | None,
               until: datetime | None) -> tuple[Any, str]:
        """The collection's feature columns in [since, until) as one Arrow table (what the signals read), and
        the SHA-256 of the files it was read from (each read once)."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        files = self.files(endpoint, deployment, collection, since)
        stamp = pa.timestamp("us", "UTC")
        tables = []
        digest = hashlib.sha256()
        for f in files:
            data = f.path.read_bytes()
            digest.update(data)
            table = pq.read_table(pa.BufferReader(data))
            if since is not None:
                table = table.filter(pc.greater_equal(table["time"], pa.scalar(since, stamp)))
            if until is not None:
                table = table.filter(pc.less(table["time"], pa.scalar(until, stamp)))
            if table.num_rows:
                tables.append(table)
        if not tables:
            raise WorkspaceError(f"nothing collected from {endpoint}/{deployment} ({collection}) in the window")
        joined = pa.concat_tables(tables, promote_options="permissive")
        features = joined.drop_columns([c for c in joined.column_names if c in META or c == "data"])
        if not features.column_names:
            raise WorkspaceError(f"{endpoint}/{deployment} ({collection}) holds no tabular rows (only payloads)")
        return features, digest.hexdigest()
