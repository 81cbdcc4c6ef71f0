"""`mlops-gitops data collected`: what the endpoint host collected from deployments with a data_collector."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mlops_gitops.commands import args
from mlops_gitops.commands.common import EXIT_OK, capability, open_project, out, workspace_backend
from mlops_gitops.errors import ConfigError
from mlops_gitops.textsafe import escape

UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """`--since`: an ISO time (UTC unless it says otherwise) or a duration back from now (`30m`, `6h`, `7d`)."""
    if not text:
        return None
    unit = UNITS.get(text[-1:])
    if unit is not None and text[:-1].isdigit():
        return (now or datetime.now(UTC)) - timedelta(**{unit: int(text[:-1])})
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--since {text!r}: give an ISO time (2026-12-07T13:00) or a duration "
                          "(30m, 6h, 7d)") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def data_collected(target: str | None = None, collection: str | None = None, since: str | None = None,
                   export: str | None = None, path: str = ".", workspace: str | None = None,
                   fmt: str = "text") -> int:
    endpoint, _, deployment = (target or "").partition("/")
    with workspace_backend(open_project(path), workspace) as (_, backend):
        collected = capability(backend, "collected", "collect inference data")
        files = collected.files(endpoint or None, deployment or None, collection, parse_since(since))
        if export:
            count = collected.export(Path(export), files)
            out(escape(f"Exported {count} file(s) ({sum(f.rows for f in files)} rows) to {export}"))
            return EXIT_OK
    if fmt == "json":
        out(json.dumps([f.to_dict() for f in files], indent=2))
        return EXIT_OK
    if not files:
        out("Nothing collected" + (f" from {target}" if target else "") + (f" since {since}" if since else "") + ".")
    for f in files:
        out(escape(f"{f.endpoint}/{f.deployment:<14} {f.collection:<14} {f.window}  {f.rows:>7} rows  "
                   f"{f.path}"))
    return EXIT_OK


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = args.actions(p, "_action")
    args.examples(p, "mlops-gitops data collected cancer -C example-repo")
    a = sub.add_parser("collected", help="the Parquet files the endpoint host collected (data_collector): list, "
                                         "or copy them out with --export")
    a.add_argument("target", nargs="?", metavar="ENDPOINT[/DEPLOYMENT]", help="only this endpoint (or deployment)")
    a.add_argument("--collection", metavar="NAME", help="only this collection (model_inputs, model_outputs, "
                                                       "request, response)")
    a.add_argument("--since", metavar="TIME", help="only windows since TIME: ISO (2026-12-07T13:00, UTC) or a "
                                                  "duration back from now (30m, 6h, 7d)")
    a.add_argument("--export", metavar="DIR", help="copy the files to DIR, in the same layout")
    args.fmt(a)
    args.workspace(a)
    args.examples(a, "mlops-gitops data collected cancer/blue --since 6h -C example-repo",
                  "mlops-gitops data collected cancer --collection model_inputs --export /tmp/collected "
                  "-C example-repo")
    a.set_defaults(run=data_collected)
