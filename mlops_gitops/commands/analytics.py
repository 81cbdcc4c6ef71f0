"""`mlops-gitops analytics export DIR`: the workspace's measurements as Parquet files for BI tools and DuckDB."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlops_gitops.commands import args
from mlops_gitops.commands.common import EXIT_OK, capability, open_project, out, workspace_backend
from mlops_gitops.textsafe import escape


def analytics_export(directory: str, path: str = ".", workspace: str | None = None) -> int:
    with workspace_backend(open_project(path), workspace) as (_, backend):
        analytics = capability(backend, "analytics", "export analytics")
        manifest = analytics.export(Path(directory))
    tables = ", ".join(f"{name} {count}" for name, count in manifest["tables"].items())
    out(escape(f"Exported a snapshot of the workspace (serial {manifest['workspace_serial']}) to {directory}: "
               f"{tables} row(s); {manifest['collected_files']} collected file(s)."))
    return EXIT_OK


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = args.actions(p, "_action")
    args.examples(p, "mlops-gitops analytics export /tmp/analytics -C example-repo")
    a = sub.add_parser("export", help="write jobs, job metrics, batch predictions, monitor results and collected "
                                      "data as Parquet files to DIR (a consistent snapshot, replacing the last)")
    a.add_argument("directory", metavar="DIR", help="where the snapshot goes (a new folder, or an earlier snapshot)")
    args.workspace(a)
    args.examples(a, "mlops-gitops analytics export /tmp/analytics -C example-repo",
                  "duckdb -c \"SELECT monitor, feature, metric, value FROM '/tmp/analytics/monitor_results.parquet' "
                  "WHERE breached\"")
    a.set_defaults(run=analytics_export)
