"""`mlops-gitops events list|tail`: the lifecycle events recorded in the workspace (CloudEvents JSON)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from mlops_gitops.backends.base import Backend
from mlops_gitops.commands import args
from mlops_gitops.commands.common import EXIT_OK, open_project, out, workspace_backend
from mlops_gitops.events.model import matches
from mlops_gitops.jsonload import loads
from mlops_gitops.state import EventRecord
from mlops_gitops.textsafe import escape


def _rows(backend: Backend, after: int = 0, limit: int | None = None) -> list[EventRecord]:
    return backend.events(after, limit)


def _line(row: EventRecord) -> str:
    try:
        data = loads(row.document).get("data") or {}
    except ValueError:
        data = {"error": "the recorded event is not valid JSON"}
    brief = ", ".join(f"{k}={v}" for k, v in data.items() if isinstance(v, str | int | float) and k != "error")
    if data.get("error"):
        brief = (brief + ", " if brief else "") + f"error={str(data['error']).splitlines()[0][:120]}"
    return escape(f"{row.at}  {row.type:<20} {row.subject}" + (f"  {brief}" if brief else ""))


def _show(rows: list[Any], fmt: str, types: list[str]) -> int:
    shown = 0
    for row in rows:
        if types and not matches(row.type, types):
            continue
        out(row.document if fmt == "json" else _line(row))
        shown += 1
    return shown


def events_list(path: str = ".", workspace: str | None = None, types: list[str] | None = None, limit: int = 50,
                fmt: str = "text") -> int:
    with workspace_backend(open_project(path), workspace) as (_, backend):
        rows = _rows(backend)
    chosen = [r for r in rows if not types or matches(r.type, types)][-limit:]
    if not chosen and fmt == "text":
        out("No events.")
    _show(chosen, fmt, [])
    return EXIT_OK


def events_tail(path: str = ".", workspace: str | None = None, types: list[str] | None = None, lines: int = 10,
                follow: bool = False, fmt: str = "text", poll_s: float = 0.5) -> int:
    with workspace_backend(open_project(path), workspace) as (_, backend):
        rows = _rows(backend, limit=lines)
        _show(rows, fmt, types or [])
        last = rows[-1].seq if rows else 0
        while follow:  # until interrupted (exit 130)
            time.sleep(poll_s)
            fresh = _rows(backend, after=last)
            if fresh:
                _show(fresh, fmt, types or [])
                last = fresh[-1].seq
    return EXIT_OK


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = args.actions(p, "_action")
    args.examples(p, "mlops-gitops events list --type 'model.*' -C example-repo",
                  "mlops-gitops events tail --follow -C example-repo")
    a = sub.add_parser("list", help="recorded events, oldest first (CloudEvents 1.0 with --format json)")
    a.add_argument("--type", action="append", dest="types", metavar="PATTERN",
                   help="only event types matching PATTERN, e.g. model.* or traffic.changed (repeatable)")
    a.add_argument("--limit", type=int, default=50, metavar="N", help="the last N matching events (default 50)")
    args.fmt(a)
    args.workspace(a)
    args.examples(a, "mlops-gitops events list -C example-repo",
                  "mlops-gitops events list --type 'deployment.*' --type traffic.changed --format json -C example-repo")
    a.set_defaults(run=events_list)
    a = sub.add_parser("tail", help="the latest events; --follow prints new ones as they come")
    a.add_argument("--type", action="append", dest="types", metavar="PATTERN",
                   help="only event types matching PATTERN, e.g. model.* (repeatable)")
    a.add_argument("-n", "--lines", type=int, default=10, metavar="N", help="start with the last N events (default 10)")
    a.add_argument("-f", "--follow", action="store_true", help="keep printing new events until interrupted (Ctrl-C)")
    args.fmt(a)
    args.workspace(a)
    args.examples(a, "mlops-gitops events tail -n 20 -C example-repo",
                  "mlops-gitops events tail --follow --type 'model.*' -C example-repo")
    a.set_defaults(run=events_tail)
